#include "server/dispatch_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "server/request_validation.h"

namespace taskwire::server {
namespace {

Duration to_duration(const google::protobuf::Duration& d) {
  return std::chrono::seconds(d.seconds()) + std::chrono::nanoseconds(d.nanos());
}

std::optional<Duration> optional_duration(bool has, const google::protobuf::Duration& d) {
  if (!has) return std::nullopt;
  return to_duration(d);
}

}  // namespace

DispatchPolicy DispatchPolicy::from(const ::taskwire::v1::DispatchOptions& options) {
  DispatchPolicy policy;
  policy.schedule_to_start_timeout = optional_duration(options.has_schedule_to_start_timeout(),
                                                       options.schedule_to_start_timeout());
  policy.start_to_close_timeout =
      optional_duration(options.has_start_to_close_timeout(), options.start_to_close_timeout());
  policy.heartbeat_timeout =
      optional_duration(options.has_heartbeat_timeout(), options.heartbeat_timeout());
  if (!options.has_retry_policy()) return policy;
  const auto& retry = options.retry_policy();
  if (retry.has_initial_interval()) policy.initial_interval = to_duration(retry.initial_interval());
  if (retry.backoff_coefficient() != 0) policy.backoff_coefficient = retry.backoff_coefficient();
  policy.maximum_interval = retry.has_maximum_interval() ? to_duration(retry.maximum_interval())
                                                         : 100 * policy.initial_interval;
  policy.maximum_attempts = retry.maximum_attempts();
  policy.non_retryable_error_types.assign(retry.non_retryable_error_types().begin(),
                                          retry.non_retryable_error_types().end());
  return policy;
}

Duration DispatchPolicy::backoff(std::uint32_t attempt) const {
  double nanos = static_cast<double>(initial_interval.count()) *
                 std::pow(backoff_coefficient, static_cast<double>(attempt - 1));
  double cap = static_cast<double>(maximum_interval.count());
  return Duration(static_cast<Duration::rep>(std::min(nanos, cap)));
}

bool DispatchPolicy::may_retry(std::uint32_t attempt, std::string_view type) const {
  if (maximum_attempts != 0 && attempt >= maximum_attempts) return false;
  return std::find(non_retryable_error_types.begin(), non_retryable_error_types.end(), type) ==
         non_retryable_error_types.end();
}

grpc::Status validate_dispatch(const ::taskwire::v1::DispatchOptions& options,
                               std::string_view prefix) {
  std::string p(prefix);
  std::optional<Duration> unused;
  if (auto status = parse_duration(
          options.has_schedule_to_start_timeout() ? &options.schedule_to_start_timeout() : nullptr,
          p + "schedule_to_start_timeout", DurationRule::kPositive, &unused);
      !status.ok())
    return status;
  if (auto status = parse_duration(
          options.has_start_to_close_timeout() ? &options.start_to_close_timeout() : nullptr,
          p + "start_to_close_timeout", DurationRule::kPositive, &unused);
      !status.ok())
    return status;
  if (auto status =
          parse_duration(options.has_heartbeat_timeout() ? &options.heartbeat_timeout() : nullptr,
                         p + "heartbeat_timeout", DurationRule::kPositive, &unused);
      !status.ok())
    return status;
  if (!options.has_retry_policy()) return grpc::Status::OK;
  const auto& retry = options.retry_policy();
  std::string r = p + "retry_policy.";
  if (auto status =
          parse_duration(retry.has_initial_interval() ? &retry.initial_interval() : nullptr,
                         r + "initial_interval", DurationRule::kPositive, &unused);
      !status.ok())
    return status;
  if (auto status =
          parse_duration(retry.has_maximum_interval() ? &retry.maximum_interval() : nullptr,
                         r + "maximum_interval", DurationRule::kPositive, &unused);
      !status.ok())
    return status;
  if (retry.backoff_coefficient() != 0 &&
      !(retry.backoff_coefficient() >= 1.0 && retry.backoff_coefficient() <= 1000.0)) {
    return invalid(r + "backoff_coefficient", "must be between 1 and 1000 (0 for the default 2)");
  }
  DispatchPolicy policy = DispatchPolicy::from(options);
  if (policy.maximum_interval < policy.initial_interval)
    return invalid(r + "maximum_interval", "must not be less than initial_interval");
  for (int i = 0; i < retry.non_retryable_error_types_size(); ++i) {
    if (retry.non_retryable_error_types(i).empty())
      return invalid(r + "non_retryable_error_types[" + std::to_string(i) + "]",
                     "must not be empty");
  }
  return grpc::Status::OK;
}

std::string seconds_text(Duration duration) {
  char text[32];
  std::snprintf(text, sizeof text, "%gs", static_cast<double>(duration.count()) / 1e9);
  return text;
}

}  // namespace taskwire::server
