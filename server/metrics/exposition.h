#pragma once

#include <string>

#include "server/metrics/registry.h"

namespace taskwire::server::metrics {

// The Content-Type of what render_text writes.
inline constexpr const char* kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

// The registry in Prometheus' text exposition format 0.0.4: per family a
// `# HELP` and a `# TYPE` line, then one line per child (a histogram's
// cumulative `_bucket{le=...}` lines, `_sum` and `_count`). Runs the
// registry's collectors first. Same thread as the metrics' updates.
std::string render_text(const Registry& registry);

// A sample value as the format writes it: integers without a fraction,
// the shortest text that reads back as the same double, +Inf, -Inf, NaN.
std::string format_value(double value);

}  // namespace taskwire::server::metrics
