#pragma once

#include <grpcpp/support/status.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "server/kind.h"
#include "server/limits.h"
#include "server/task_id.h"
#include "taskwire/v1/tasks.pb.h"

// Checks of requests, before anything changes. Every message names the field
// (with the caller's prefix, such as "tasks[2].") and the rule it breaks.
namespace taskwire::server {

namespace v1 = ::taskwire::v1;

grpc::Status invalid(std::string_view field, std::string_view rule);

// kind, args (by the kind's rules and the size limit), name, labels, timeout
// and idempotency key of one CreateTaskRequest. Leaves the args serialized in
// `serialized_args`, as a task's record keeps them.
grpc::Status validate_create(const v1::CreateTaskRequest& request, const KindRegistry& kinds,
                             const Limits& limits, std::string_view prefix,
                             std::string* serialized_args);

// A CreateTasks call's own idempotency key: at most 256 bytes, and if set,
// none of its tasks has a key of its own.
grpc::Status validate_batch_key(const v1::CreateTasksRequest& request);

enum class DurationRule { kPositive, kNotNegative };

// An optional google.protobuf.Duration (null if unset): nullopt if unset,
// else its value, which must be well-formed, obey `rule` and be at most a
// year.
grpc::Status parse_duration(const google::protobuf::Duration* duration, std::string_view field,
                            DurationRule rule, std::optional<Duration>* out);

grpc::Status parse_task_id(std::string_view text, std::string_view field, TaskId* out);

// A request's `view` field: a known TaskView (UNSPECIFIED means FULL).
grpc::Status parse_view(int view, std::string_view field, v1::TaskView* out);

// The number of ids in a request against the limit.
grpc::Status check_id_count(std::size_t count, std::string_view field, const Limits& limits);

}  // namespace taskwire::server
