#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace taskwire::cli {

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum class ServingStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

std::string_view serving_status_name(ServingStatus status);

// Calls grpc.health.v1.Health/Check for the server as a whole (service "").
// There is no health.proto to generate stubs from, so the call goes through
// the generic stub with the messages encoded by hand: the request is empty
// and the answer's only field is 1, the status, as a varint. Returns the
// call's status; *serving is set when it is OK.
grpc::Status check_health(const std::shared_ptr<grpc::Channel>& channel,
                          std::chrono::system_clock::duration deadline, ServingStatus* serving);

}  // namespace taskwire::cli
