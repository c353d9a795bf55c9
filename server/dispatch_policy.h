#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "taskwire/v1/tasks.pb.h"

namespace taskwire::server {

// A task's DispatchOptions with the defaults filled in (Temporal's: retry
// after 1 s, doubling, at most 100 x the first interval, without a limit
// on attempts).
struct DispatchPolicy {
  std::optional<Duration> schedule_to_start_timeout;
  std::optional<Duration> start_to_close_timeout;
  std::optional<Duration> heartbeat_timeout;
  Duration initial_interval = std::chrono::seconds(1);
  double backoff_coefficient = 2.0;
  Duration maximum_interval = std::chrono::seconds(100);
  std::uint32_t maximum_attempts = 0;  // 0: no limit.
  std::vector<std::string> non_retryable_error_types;

  static DispatchPolicy from(const ::taskwire::v1::DispatchOptions& options);

  // The wait before the attempt after `attempt` (from 1).
  Duration backoff(std::uint32_t attempt) const;
  // Whether an attempt that failed with `type` may be followed by another.
  bool may_retry(std::uint32_t attempt, std::string_view type) const;
};

// Checks a CreateTaskRequest's dispatch options; fields are named under
// `prefix` (such as "dispatch.").
grpc::Status validate_dispatch(const ::taskwire::v1::DispatchOptions& options,
                               std::string_view prefix);

// "1.5s", for messages.
std::string seconds_text(Duration duration);

}  // namespace taskwire::server
