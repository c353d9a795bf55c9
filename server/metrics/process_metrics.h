#pragma once

#include "server/metrics/registry.h"

namespace taskwire::server::metrics {

// process_resident_memory_bytes (read from /proc/self/statm at each render)
// and process_start_time_seconds, as Prometheus' client libraries name
// them.
void add_process_metrics(Registry& registry);

}  // namespace taskwire::server::metrics
