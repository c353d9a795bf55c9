#pragma once

#include <string>

namespace taskwire::server {

// Sets up spdlog for the process: "text" (human-readable lines) or "json"
// (one JSON object per line), at the given level (trace, debug, info,
// warn, error, critical, off). Throws std::invalid_argument on an unknown
// format or level.
void configure_logging(const std::string& format, const std::string& level);

}  // namespace taskwire::server
