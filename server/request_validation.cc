#include "server/request_validation.h"

#include <chrono>
#include <string>

#include "server/builtin_kinds.h"
#include "server/dispatch_policy.h"

namespace taskwire::server {
namespace {

constexpr std::size_t kMaxTextBytes = 256;
constexpr std::size_t kMaxLabels = 64;
constexpr std::int64_t kMaxDurationSeconds = 365LL * 24 * 3600;

std::string at(std::string_view prefix, std::string_view field) {
  std::string path(prefix);
  path += field;
  return path;
}

// The field's path is built only for the error: a batch of ten thousand
// valid tasks should not pay for ten thousand error messages unmade.
grpc::Status check_text(const std::string& text, std::string_view prefix, std::string_view field) {
  if (text.size() > kMaxTextBytes) {
    return invalid(at(prefix, field),
                   "must be at most 256 bytes, got " + std::to_string(text.size()));
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status invalid(std::string_view field, std::string_view rule) {
  std::string message(field);
  message += ": ";
  message += rule;
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

grpc::Status validate_create(const v1::CreateTaskRequest& request, const KindRegistry& kinds,
                             const Limits& limits, std::string_view prefix,
                             std::string* serialized_args) {
  if (request.kind().empty())
    return invalid(at(prefix, "kind"), "required; known kinds: " + kinds.names());
  const Kind* kind = kinds.find(request.kind());
  if (kind == nullptr) {
    return invalid(at(prefix, "kind"),
                   "unknown kind '" + request.kind() + "'; known kinds: " + kinds.names());
  }
  // Serialized once: the size is checked on the bytes the record keeps.
  serialized_args->clear();
  if (request.has_args()) request.args().SerializeToString(serialized_args);
  if (serialized_args->size() > limits.max_args_bytes) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        at(prefix, "args") + ": " + std::to_string(serialized_args->size()) +
                            " bytes is over the limit of " + std::to_string(limits.max_args_bytes));
  }
  if (auto error = kind->validate(request.args())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(prefix) + *error);
  }
  if (auto status = check_text(request.name(), prefix, "name"); !status.ok()) return status;
  if (auto status = check_text(request.idempotency_key(), prefix, "idempotency_key"); !status.ok())
    return status;
  if (request.labels_size() > static_cast<int>(kMaxLabels)) {
    return invalid(at(prefix, "labels"),
                   "at most 64 labels, got " + std::to_string(request.labels_size()));
  }
  for (const auto& [key, value] : request.labels()) {
    if (key.empty()) return invalid(at(prefix, "labels"), "keys must not be empty");
    if (key.size() > kMaxTextBytes || value.size() > kMaxTextBytes) {
      std::string field = "labels[" + key + "]";
      if (auto status = check_text(key, prefix, field); !status.ok()) return status;
      return check_text(value, prefix, field);
    }
  }
  if (request.has_timeout()) {
    std::optional<Duration> timeout;
    if (auto status = parse_duration(&request.timeout(), at(prefix, "timeout"),
                                     DurationRule::kPositive, &timeout);
        !status.ok())
      return status;
  }
  if (request.has_dispatch()) return validate_dispatch(request.dispatch(), at(prefix, "dispatch."));
  return grpc::Status::OK;
}

grpc::Status validate_batch_key(const v1::CreateTasksRequest& request) {
  if (request.idempotency_key().empty()) return grpc::Status::OK;
  if (auto status = check_text(request.idempotency_key(), "", "idempotency_key"); !status.ok())
    return status;
  for (int i = 0; i < request.tasks_size(); ++i) {
    if (!request.tasks(i).idempotency_key().empty()) {
      return invalid("tasks[" + std::to_string(i) + "].idempotency_key",
                     "must be empty when the call has an idempotency_key");
    }
  }
  return grpc::Status::OK;
}

grpc::Status parse_duration(const google::protobuf::Duration* duration, std::string_view field,
                            DurationRule rule, std::optional<Duration>* out) {
  out->reset();
  if (duration == nullptr) return grpc::Status::OK;
  std::int64_t seconds = duration->seconds();
  std::int32_t nanos = duration->nanos();
  if (nanos <= -1'000'000'000 || nanos >= 1'000'000'000 || (seconds > 0 && nanos < 0) ||
      (seconds < 0 && nanos > 0)) {
    return invalid(field,
                   "malformed duration: nanos must be within (-1e9, 1e9) with the sign of seconds");
  }
  bool negative = seconds < 0 || nanos < 0;
  bool zero = seconds == 0 && nanos == 0;
  if (negative)
    return invalid(field,
                   rule == DurationRule::kPositive ? "must be positive" : "must not be negative");
  if (zero && rule == DurationRule::kPositive) return invalid(field, "must be positive");
  if (seconds > kMaxDurationSeconds || (seconds == kMaxDurationSeconds && nanos > 0)) {
    return invalid(field, "must be at most one year (31536000 s)");
  }
  *out = std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos);
  return grpc::Status::OK;
}

grpc::Status parse_task_id(std::string_view text, std::string_view field, TaskId* out) {
  if (text.empty()) return invalid(field, "required: a task id");
  auto id = TaskId::parse(text);
  if (!id) {
    std::string shown(text.substr(0, 64));
    return invalid(field, "'" + shown + "' is not a task id (26 characters of Crockford base32)");
  }
  *out = *id;
  return grpc::Status::OK;
}

grpc::Status check_id_count(std::size_t count, std::string_view field, const Limits& limits) {
  if (count <= limits.max_ids_per_request) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      std::string(field) + ": " + std::to_string(count) + " is over the limit of " +
                          std::to_string(limits.max_ids_per_request) + " per request");
}

grpc::Status parse_view(int view, std::string_view field, v1::TaskView* out) {
  if (view == v1::TASK_VIEW_UNSPECIFIED || view == v1::TASK_VIEW_FULL) {
    *out = v1::TASK_VIEW_FULL;
    return grpc::Status::OK;
  }
  if (view == v1::TASK_VIEW_OUTCOME) {
    *out = v1::TASK_VIEW_OUTCOME;
    return grpc::Status::OK;
  }
  return invalid(field, "unknown value " + std::to_string(view) +
                            "; known values: TASK_VIEW_FULL (1), TASK_VIEW_OUTCOME (2)");
}

}  // namespace taskwire::server
