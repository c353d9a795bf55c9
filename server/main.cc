// taskwired: the taskwire task service.
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "server/logging.h"
#include "server/server.h"

namespace {

using taskwire::Duration;

Duration seconds_flag(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"taskwired: Python asyncio's task model as a gRPC service"};
  app.option_defaults()->always_capture_default();
  taskwire::server::ServerOptions options;
  double retention_seconds = 3600;
  double drain_seconds = 10;
  std::string log_format = "text";
  std::string log_level = "info";
  std::string port_file;
  std::string metrics_port_file;
  auto& limits = options.limits;
  app.add_option("--listen", options.listen,
                 "Address to serve on, host:port (port 0: any free port)")
      ->envname("TASKWIRE_LISTEN");
  app.add_option("--max-pending-tasks", limits.max_pending_tasks, "Unfinished tasks held at most")
      ->envname("TASKWIRE_MAX_PENDING_TASKS")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-args-bytes", limits.max_args_bytes, "Largest args of one task, in bytes")
      ->envname("TASKWIRE_MAX_ARGS_BYTES")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-ids-per-request", limits.max_ids_per_request,
                 "Most ids (or tasks) in one request")
      ->envname("TASKWIRE_MAX_IDS_PER_REQUEST")
      ->check(CLI::PositiveNumber);
  app.add_option("--retention", retention_seconds, "Seconds a finished task is kept")
      ->envname("TASKWIRE_RETENTION")
      ->check(CLI::Range(0.0, 365.0 * 24 * 3600));
  app.add_option("--max-retained-tasks", limits.max_retained_tasks, "Finished tasks kept at most")
      ->envname("TASKWIRE_MAX_RETAINED_TASKS");
  app.add_option("--drain-grace", drain_seconds, "Seconds calls in flight get to finish on SIGTERM")
      ->envname("TASKWIRE_DRAIN_GRACE")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--log-format", log_format, "text or json")
      ->envname("TASKWIRE_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->envname("TASKWIRE_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  auto& workers = options.workers;
  double worker_heartbeat_timeout = 10;
  app.add_flag("--refuse-unknown-kinds", workers.refuse_unknown_kinds,
               "Refuse tasks of a kind no connected worker runs (else they wait, PENDING)")
      ->envname("TASKWIRE_REFUSE_UNKNOWN_KINDS");
  app.add_option("--max-worker-result-bytes", workers.max_result_bytes,
                 "Largest result a worker may return, in bytes")
      ->envname("TASKWIRE_MAX_WORKER_RESULT_BYTES")
      ->check(CLI::PositiveNumber);
  app.add_option("--worker-heartbeat-timeout", worker_heartbeat_timeout,
                 "Seconds a silent worker is given before it counts as lost")
      ->envname("TASKWIRE_WORKER_HEARTBEAT_TIMEOUT")
      ->check(CLI::Range(0.01, 3600.0));
  app.add_option("--max-running-per-kind", workers.max_running_per_kind,
                 "Tasks of one worker-run kind running at once, over all workers (0: no limit)")
      ->envname("TASKWIRE_MAX_RUNNING_PER_KIND");
  bool in_memory = false;
  auto* data_dir_option =
      app.add_option("--data-dir", options.data_dir,
                     "Keep tasks in a SQLite database in this directory (created if missing), "
                     "so that they survive a restart")
          ->envname("TASKWIRE_DATA_DIR");
  app.add_flag("--in-memory", in_memory, "Keep tasks in memory only (the default)")
      ->envname("TASKWIRE_IN_MEMORY");
  app.add_option("--port-file", port_file,
                 "Write the bound port to this file once serving (for tests)");
  app.add_option("--metrics-listen", options.metrics_listen,
                 "Serve Prometheus metrics on GET /metrics at host:port (port 0: any free port; "
                 "empty: no metrics)")
      ->envname("TASKWIRE_METRICS_LISTEN");
  app.add_option("--metrics-port-file", metrics_port_file,
                 "Write the metrics endpoint's bound port to this file once serving (for tests)");
  CLI11_PARSE(app, argc, argv);
  if (data_dir_option->count() > 0 && options.data_dir.empty()) {
    std::fprintf(stderr, "--data-dir (TASKWIRE_DATA_DIR): must not be empty\n");
    return 2;
  }
  if (in_memory && !options.data_dir.empty()) {
    std::fprintf(stderr,
                 "--data-dir (TASKWIRE_DATA_DIR) and --in-memory (TASKWIRE_IN_MEMORY) exclude "
                 "each other: give one\n");
    return 2;
  }
  limits.retention = seconds_flag(retention_seconds);
  options.drain_grace = seconds_flag(drain_seconds);
  workers.heartbeat_timeout = seconds_flag(worker_heartbeat_timeout);
  // Workers speak up five times per timeout, so one late message is no loss.
  workers.heartbeat_interval = workers.heartbeat_timeout / 5;

  try {
    taskwire::server::configure_logging(log_format, log_level);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }

  // Signals go to one thread that asks the server to stop; every other
  // thread (gRPC's included, as they inherit this mask) ignores them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  taskwire::server::Server server(options);
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    spdlog::info("received {}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    server.stop();
    sigwait(&signals, &signal);
    spdlog::warn("second signal: exiting at once");
    std::_Exit(1);
  });
  signal_thread.detach();

  try {
    auto write_port = [](const std::string& file, int port) {
      if (file.empty()) return;
      std::string temp = file + ".tmp";
      std::ofstream(temp) << port << "\n";
      std::rename(temp.c_str(), file.c_str());  // Readers never see half a file.
    };
    server.run([&](int port) {
      // The metrics port first: a test that sees the gRPC port may scrape.
      if (server.metrics_port() != 0) write_port(metrics_port_file, server.metrics_port());
      write_port(port_file, port);
    });
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  return 0;
}
