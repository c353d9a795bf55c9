#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace taskwire::server::metrics {

// Serves GET /metrics over HTTP (cpp-httplib) on a thread of its own, on
// its own port, apart from gRPC. Each scrape asks `scrape` for the text;
// nullopt (the loop did not answer in time, or is gone) is answered with
// 503. Other paths get 404.
class MetricsEndpoint {
 public:
  using Scrape = std::function<std::optional<std::string>()>;

  // Binds `listen` (host:port, port 0 for any free port; IPv6 hosts in
  // brackets) and starts serving. Throws std::invalid_argument for an
  // address that is not host:port and std::runtime_error if it cannot bind.
  MetricsEndpoint(const std::string& listen, Scrape scrape);
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;
  // Stops serving and joins the thread.
  ~MetricsEndpoint();

  int port() const noexcept { return port_; }
  // Stops serving; waits for a scrape in progress. Idempotent.
  void stop();

 private:
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::atomic<bool> listen_returned_ = false;
  int port_ = 0;
};

// Splits "host:port" (or "[v6]:port"); throws std::invalid_argument naming
// `flag` and the rule otherwise.
void split_host_port(const std::string& listen, const std::string& flag, std::string* host,
                     int* port);

}  // namespace taskwire::server::metrics
