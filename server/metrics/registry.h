#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace taskwire::server::metrics {

// A small Prometheus-style registry: counters, gauges and histograms in
// families with labels. Nothing here is thread-safe, by design: taskwired
// changes every metric on its loop thread, where a plain increment costs a
// few instructions, and renders them on that same thread when scraped
// (metrics_endpoint.h hands the render to the loop).

// The label values of one child, in the order of its family's label names.
using LabelValues = std::vector<std::string>;

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_ += n; }
  std::uint64_t value() const noexcept { return value_; }

 private:
  std::uint64_t value_ = 0;
};

class Gauge {
 public:
  void set(double value) noexcept { value_ = value; }
  void add(double delta) noexcept { value_ += delta; }
  double value() const noexcept { return value_; }

 private:
  double value_ = 0;
};

class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, ascending; +Inf is implicit. Must
  // outlive the histogram (its family keeps them).
  explicit Histogram(std::span<const double> bounds)
      : bounds_(bounds), counts_(bounds.size() + 1, 0) {}

  void observe(double value) noexcept {
    std::size_t i = 0;
    while (i < bounds_.size() && value > bounds_[i]) ++i;
    ++counts_[i];
    sum_ += value;
    ++count_;
  }

  std::span<const double> bounds() const noexcept { return bounds_; }
  // Per bucket, not cumulative: counts()[i] observations were at most
  // bounds()[i] and above the bound before; the last is above every bound.
  const std::vector<std::uint64_t>& counts() const noexcept { return counts_; }
  double sum() const noexcept { return sum_; }
  std::uint64_t count() const noexcept { return count_; }

 private:
  std::span<const double> bounds_;
  std::vector<std::uint64_t> counts_;
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

enum class MetricType { kCounter, kGauge, kHistogram };

// One metric name with its help text and label names, and a child per
// combination of label values. Children never move: callers look a child
// up once (a map lookup by the values' text) and keep the reference.
template <typename Metric>
class Family {
 public:
  struct Child {
    LabelValues labels;
    Metric metric;
  };

  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // The child with these label values (as many as label names), made on
  // first use.
  Metric& with(const LabelValues& values) {
    auto it = index_.find(values);
    if (it != index_.end()) return it->second->metric;
    Child& child = make(values);
    index_.emplace(values, &child);
    return child.metric;
  }

  const std::string& name() const noexcept { return name_; }
  const std::string& help() const noexcept { return help_; }
  const std::vector<std::string>& label_names() const noexcept { return label_names_; }
  // In order of creation.
  const std::deque<Child>& children() const noexcept { return children_; }

 private:
  Child& make(const LabelValues& values) {
    if constexpr (std::is_same_v<Metric, Histogram>) {
      return children_.emplace_back(Child{values, Histogram(bounds_)});
    } else {
      return children_.emplace_back(Child{values, Metric()});
    }
  }

  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // Histograms only.
  std::deque<Child> children_;
  std::map<LabelValues, Child*> index_;
};

// The families of a process, in order of registration, and the
// collectors that refresh values read from elsewhere before a render.
class Registry {
 public:
  using AnyFamily =
      std::variant<const Family<Counter>*, const Family<Gauge>*, const Family<Histogram>*>;

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& counter(std::string name, std::string help,
                           std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(std::string name, std::string help,
                       std::vector<std::string> label_names = {});
  // `bounds`: the buckets' upper bounds, strictly ascending and finite.
  Family<Histogram>& histogram(std::string name, std::string help,
                               std::vector<std::string> label_names, std::vector<double> bounds);

  // `collect` runs before each render, on the rendering thread.
  void add_collector(std::function<void()> collect) { collectors_.push_back(std::move(collect)); }
  void collect() const {
    for (const auto& collect : collectors_) collect();
  }

  const std::vector<AnyFamily>& families() const noexcept { return families_; }

 private:
  // Unlabelled families get their one child at once, so that they show 0
  // before anything happens.
  template <typename Metric>
  Family<Metric>& add(std::unique_ptr<Family<Metric>> family);

  std::vector<std::unique_ptr<Family<Counter>>> counters_;
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_;
  std::vector<AnyFamily> families_;
  std::vector<std::function<void()>> collectors_;
};

}  // namespace taskwire::server::metrics
