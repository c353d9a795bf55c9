#include "server/metrics/process_metrics.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>

namespace taskwire::server::metrics {
namespace {

double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

// The process's start in Unix seconds: boot time (/proc/stat's btime) plus
// the start in clock ticks after boot (/proc/self/stat's 22nd field).
// nullopt where /proc does not say.
std::optional<double> start_time_seconds() {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces; fields after it follow ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  // Field 3 is the first after ')'; the start time is field 22.
  for (int i = 3; i < 22; ++i) fields >> field;
  unsigned long long start_ticks = 0;
  if (!(fields >> start_ticks)) return std::nullopt;
  std::ifstream proc_stat("/proc/stat");
  std::string line;
  while (std::getline(proc_stat, line)) {
    if (line.starts_with("btime ")) {
      double boot = std::stod(line.substr(6));
      return boot + static_cast<double>(start_ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  return std::nullopt;
}

}  // namespace

void add_process_metrics(Registry& registry) {
  Gauge& resident =
      registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.").with({});
  Gauge& start = registry
                     .gauge("process_start_time_seconds",
                            "Start time of the process since unix epoch in seconds.")
                     .with({});
  auto started = start_time_seconds();
  start.set(started
                ? *started
                : std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                      .count());
  registry.add_collector([&resident] { resident.set(resident_bytes()); });
}

}  // namespace taskwire::server::metrics
