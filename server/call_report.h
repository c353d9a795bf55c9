#pragma once

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <string>
#include <string_view>

#include "server/logging.h"
#include "server/metrics/rpc_metrics.h"
#include "server/trace_context.h"

namespace taskwire::server {

// What a call of any shape (unary, server stream) keeps to report itself:
// how long it took, when metrics are on, and its trace id, for the lines
// it logs.
class CallReport {
 public:
  void arrived(const metrics::RpcMetrics* metrics) {
    if (metrics != nullptr) arrived_at_ = std::chrono::steady_clock::now();
  }

  // What the handler is told of the call: its trace id, from its metadata.
  CallInfo info(const grpc::ServerContext& context) {
    return CallInfo{read_trace_id(context, &trace_id_)};
  }

  // As the call finishes: times it, and logs a failure at debug level.
  void ended(std::string_view method, metrics::RpcMetrics* metrics,
             const grpc::Status& status) const {
    if (metrics != nullptr) {
      std::chrono::duration<double> took = std::chrono::steady_clock::now() - arrived_at_;
      metrics->observe(status.error_code(), took.count());
    }
    if (!status.ok() && spdlog::should_log(spdlog::level::debug)) {
      log_with(spdlog::level::debug, LogFields{{}, trace_id_}, "{}: {}: {}", method,
               metrics::RpcMetrics::code_name(status.error_code()), status.error_message());
    }
  }

 private:
  std::string trace_id_;  // From the call's traceparent; empty without one.
  std::chrono::steady_clock::time_point arrived_at_;  // When metrics are on.
};

}  // namespace taskwire::server
