#include "server/metrics/registry.h"

#include <cmath>
#include <set>
#include <stdexcept>

namespace taskwire::server::metrics {
namespace {

// Metric and label names as Prometheus defines them: [a-zA-Z_:][a-zA-Z0-9_:]*
// (labels without ':').
bool valid_name(const std::string& name, bool colon_allowed) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (colon_allowed && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void check_names(const std::string& name, const std::vector<std::string>& label_names) {
  if (!valid_name(name, true)) throw std::invalid_argument("metric name '" + name + "'");
  std::set<std::string> seen;
  for (const std::string& label : label_names) {
    if (!valid_name(label, false) || label.starts_with("__") || label == "le" ||
        !seen.insert(label).second) {
      throw std::invalid_argument("label name '" + label + "' of metric '" + name + "'");
    }
  }
}

}  // namespace

template <typename Metric>
Family<Metric>& Registry::add(std::unique_ptr<Family<Metric>> family) {
  Family<Metric>& added = *family;
  if (added.label_names().empty()) added.with({});
  families_.emplace_back(&added);
  if constexpr (std::is_same_v<Metric, Counter>) {
    counters_.push_back(std::move(family));
  } else if constexpr (std::is_same_v<Metric, Gauge>) {
    gauges_.push_back(std::move(family));
  } else {
    histograms_.push_back(std::move(family));
  }
  return added;
}

Family<Counter>& Registry::counter(std::string name, std::string help,
                                   std::vector<std::string> label_names) {
  check_names(name, label_names);
  return add(
      std::make_unique<Family<Counter>>(std::move(name), std::move(help), std::move(label_names)));
}

Family<Gauge>& Registry::gauge(std::string name, std::string help,
                               std::vector<std::string> label_names) {
  check_names(name, label_names);
  return add(
      std::make_unique<Family<Gauge>>(std::move(name), std::move(help), std::move(label_names)));
}

Family<Histogram>& Registry::histogram(std::string name, std::string help,
                                       std::vector<std::string> label_names,
                                       std::vector<double> bounds) {
  check_names(name, label_names);
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
      throw std::invalid_argument("bucket bounds of '" + name + "': must ascend and be finite");
  }
  return add(std::make_unique<Family<Histogram>>(std::move(name), std::move(help),
                                                 std::move(label_names), std::move(bounds)));
}

}  // namespace taskwire::server::metrics
