#include "server/trace_context.h"

namespace taskwire::server {
namespace {

bool lower_hex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool all_zeros(std::string_view text) { return text.find_first_not_of('0') == std::string::npos; }

}  // namespace

std::optional<std::string> parse_traceparent(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2.
  constexpr std::size_t kLength = 55;
  if (value.size() < kLength) return std::nullopt;
  std::string_view version = value.substr(0, 2);
  std::string_view trace_id = value.substr(3, 32);
  std::string_view parent_id = value.substr(36, 16);
  std::string_view flags = value.substr(53, 2);
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  if (!lower_hex(version) || version == "ff" || !lower_hex(trace_id) || !lower_hex(parent_id) ||
      !lower_hex(flags)) {
    return std::nullopt;
  }
  if (all_zeros(trace_id) || all_zeros(parent_id)) return std::nullopt;
  if (value.size() > kLength && (version == "00" || value[kLength] != '-')) return std::nullopt;
  return std::string(trace_id);
}

const std::string* read_trace_id(const grpc::ServerContext& context, std::string* storage) {
  const auto& metadata = context.client_metadata();
  if (metadata.empty()) return nullptr;
  auto it = metadata.find("traceparent");
  if (it == metadata.end()) return nullptr;
  auto trace_id = parse_traceparent(std::string_view(it->second.data(), it->second.size()));
  if (!trace_id) return nullptr;
  *storage = std::move(*trace_id);
  return storage;
}

}  // namespace taskwire::server
