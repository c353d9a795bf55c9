#include "client/cli/health.h"

#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>

namespace taskwire::cli {
namespace {

constexpr char kCheckMethod[] = "/grpc.health.v1.Health/Check";

bool decode_status(const grpc::ByteBuffer& buffer, ServingStatus* serving) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const auto& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  // An unknown-field set parses any well-formed message without a schema.
  google::protobuf::UnknownFieldSet fields;
  if (!fields.ParseFromString(bytes)) return false;
  // proto3 leaves out a zero field: no field 1 means UNKNOWN.
  *serving = ServingStatus::kUnknown;
  for (int i = 0; i < fields.field_count(); ++i) {
    const auto& field = fields.field(i);
    if (field.number() == 1 && field.type() == google::protobuf::UnknownField::TYPE_VARINT) {
      *serving = static_cast<ServingStatus>(field.varint());
    }
  }
  return true;
}

}  // namespace

std::string_view serving_status_name(ServingStatus status) {
  switch (status) {
    case ServingStatus::kServing:
      return "SERVING";
    case ServingStatus::kNotServing:
      return "NOT_SERVING";
    case ServingStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
    default:
      return "UNKNOWN";
  }
}

grpc::Status check_health(const std::shared_ptr<grpc::Channel>& channel,
                          std::chrono::system_clock::duration deadline, ServingStatus* serving) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  // HealthCheckRequest{service: ""} encodes to no bytes at all.
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  grpc::CompletionQueue queue;
  auto call = stub.PrepareUnaryCall(&context, kCheckMethod, request, &queue);
  call->StartCall();
  int tag = 0;
  call->Finish(&response, &status, &tag);
  void* got_tag = nullptr;
  bool ok = false;
  queue.Next(&got_tag, &ok);
  queue.Shutdown();
  while (queue.Next(&got_tag, &ok)) {
  }
  if (!status.ok()) return status;
  if (!decode_status(response, serving)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "malformed health check response");
  }
  return status;
}

}  // namespace taskwire::cli
