#pragma once

// What the benchmark programs read about processes, and how they summarize
// latencies: one copy for all of them.

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace taskwire::bench {

// utime + stime of a process, in seconds (from /proc/PID/stat), or -1.
inline double process_cpu_seconds(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;  // Fields 3..13.
  unsigned long long utime = 0, stime = 0;
  fields >> utime >> stime;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A field of /proc/PID/status in kB (VmRSS, VmHWM), or -1.
inline long status_kb(long pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream fields(line.substr(field.size() + 1));
      long kb = -1;
      fields >> kb;
      return kb;
    }
  }
  return -1;
}

// The q-quantile (0..1) of sorted values, nearest rank.
template <typename T>
T quantile(const std::vector<T>& sorted, double q) {
  if (sorted.empty()) return T{};
  auto rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

}  // namespace taskwire::bench
