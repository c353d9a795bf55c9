#include "server/metrics/metrics_endpoint.h"

#include <httplib.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <stdexcept>

#include "server/metrics/exposition.h"

namespace taskwire::server::metrics {

void split_host_port(const std::string& listen, const std::string& flag, std::string* host,
                     int* port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size())
    throw std::invalid_argument(flag + ": must be host:port, got '" + listen + "'");
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = listen.substr(colon + 1);
  int value = -1;
  auto [end, error] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (error != std::errc() || end != p.data() + p.size() || value < 0 || value > 65535)
    throw std::invalid_argument(flag + ": port must be 0 to 65535, got '" + p + "'");
  *host = std::move(h);
  *port = value;
}

MetricsEndpoint::MetricsEndpoint(const std::string& listen, Scrape scrape)
    : http_(std::make_unique<httplib::Server>()) {
  std::string host;
  int port = 0;
  split_host_port(listen, "--metrics-listen", &host, &port);
  // One worker thread is plenty for a scraper every few seconds (the
  // library's default is a pool of at least eight), and one request per
  // connection keeps stop() from waiting out an idle keep-alive.
  http_->new_task_queue = [] { return new httplib::ThreadPool(1); };
  http_->set_keep_alive_max_count(1);
  http_->Get("/metrics",
             [scrape = std::move(scrape)](const httplib::Request&, httplib::Response& response) {
               std::optional<std::string> text = scrape();
               if (!text) {
                 response.status = 503;
                 response.set_content("metrics unavailable: the server did not answer in time\n",
                                      "text/plain");
                 return;
               }
               response.set_content(std::move(*text), kTextContentType);
             });
  if (port == 0) {
    port_ = http_->bind_to_any_port(host);
  } else if (http_->bind_to_port(host, port)) {
    port_ = port;
  }
  if (port_ <= 0) throw std::runtime_error("--metrics-listen: cannot listen on " + listen);
  thread_ = std::thread([this] {
    http_->listen_after_bind();
    listen_returned_ = true;
  });
  // stop() only stops a server that is running: wait until it is, so that
  // a stop right after start cannot be lost.
  while (!http_->is_running() && !listen_returned_)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

MetricsEndpoint::~MetricsEndpoint() { stop(); }

void MetricsEndpoint::stop() {
  if (!thread_.joinable()) return;
  http_->stop();
  thread_.join();
}

}  // namespace taskwire::server::metrics
