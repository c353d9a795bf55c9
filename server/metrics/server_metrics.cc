#include "server/metrics/server_metrics.h"

#include "server/metrics/exposition.h"
#include "server/metrics/process_metrics.h"

namespace taskwire::server::metrics {
namespace {

// From 50 µs (a unary call on the loop takes tens of µs) to a minute (calls
// that await tasks).
std::vector<double> rpc_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,     0.25,   0.5,     1,      2.5,   5,      10,    30,   60};
}

}  // namespace

ServerMetrics::ServerMetrics(const Dispatcher& dispatcher)
    : tasks_(registry_),
      rpc_duration_(registry_.histogram(
          "taskwire_rpc_duration_seconds",
          "Seconds from a call's arrival to its answer, by method and gRPC status code.",
          {"method", "code"}, rpc_buckets())) {
  Family<Gauge>& depth = registry_.gauge("taskwire_queue_depth",
                                         "Attempts of tasks run by workers waiting for a worker, "
                                         "by kind.",
                                         {"kind"});
  Gauge& workers =
      registry_.gauge("taskwire_workers_connected", "Worker streams connected.").with({});
  registry_.add_collector([&dispatcher, &depth, &workers] {
    for (const auto& [kind, waiting] : dispatcher.queue_depths())
      depth.with({kind}).set(static_cast<double>(waiting));
    workers.set(static_cast<double>(dispatcher.worker_count()));
  });
  add_process_metrics(registry_);
}

std::string ServerMetrics::render() const { return render_text(registry_); }

}  // namespace taskwire::server::metrics
