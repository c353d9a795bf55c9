#pragma once

#include <array>
#include <string>

#include "server/metrics/registry.h"

namespace taskwire::server::metrics {

// taskwire_rpc_duration_seconds for one RPC method: a histogram per status
// code, each looked up in the family once, on the first call that ends
// with that code, and kept in an array indexed by the code.
class RpcMetrics {
 public:
  RpcMetrics(Family<Histogram>& family, std::string method)
      : family_(family), method_(std::move(method)) {}

  // `code`: a grpc::StatusCode.
  void observe(int code, double seconds) {
    if (code < 0 || code >= static_cast<int>(by_code_.size())) code = kUnknown;
    Histogram*& histogram = by_code_[code];
    if (histogram == nullptr) histogram = &family_.with({method_, code_name(code)});
    histogram->observe(seconds);
  }

  // "OK", "INVALID_ARGUMENT", ...: grpc::StatusCode's names, as gRPC's own
  // tools print them.
  static const char* code_name(int code);

 private:
  static constexpr int kUnknown = 2;

  Family<Histogram>& family_;
  std::string method_;
  std::array<Histogram*, 17> by_code_{};
};

}  // namespace taskwire::server::metrics
