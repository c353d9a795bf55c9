#pragma once

#include <grpcpp/server_context.h>

#include <optional>
#include <string>
#include <string_view>

namespace taskwire::server {

// The trace id of a W3C Trace Context `traceparent` value,
// "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>" (lowercase hex;
// the ids not all zeros; version ff is invalid; a later version may append
// "-..." fields). nullopt for anything malformed, which is then ignored,
// as the specification asks.
std::optional<std::string> parse_traceparent(std::string_view value);

// What a handler knows of its call beyond the request.
struct CallInfo {
  // The call's W3C trace id (32 lowercase hex digits), or null without a
  // valid traceparent.
  const std::string* trace_id = nullptr;
};

// The trace id of a call's `traceparent` metadata, put in `*storage`;
// null (and nothing parsed) when the call has none or it is malformed.
const std::string* read_trace_id(const grpc::ServerContext& context, std::string* storage);

}  // namespace taskwire::server
