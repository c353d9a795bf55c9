// A bare echo server on gRPC's completion-queue async API: one server
// completion queue per thread (default: one per core), each thread polling
// its own queue, with calls requested ahead on each.
//
//   echo_cq_server --listen 127.0.0.1:0 --port-file F [--threads N] [--ahead N]
#include <grpcpp/grpcpp.h>
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "echo.grpc.pb.h"

namespace {

namespace v1 = taskwire::bench::v1;

// Writes the port atomically, as taskwired's --port-file does.
void write_port_file(const std::string& path, int port) {
  if (path.empty()) return;
  std::string temp = path + ".tmp";
  std::ofstream(temp) << port << "\n";
  std::rename(temp.c_str(), path.c_str());
}

// Blocks SIGTERM and SIGINT here and in the threads started later, so that
// main can wait for one with sigwait.
sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// One call's state machine: requested -> answered -> freed.
class Call {
 public:
  Call(v1::EchoService::AsyncService& service, grpc::ServerCompletionQueue& cq)
      : service_(service), cq_(cq), responder_(&context_) {
    service_.RequestEcho(&context_, &request_, &responder_, &cq_, &cq_, this);
  }

  void proceed(bool ok) {
    if (answered_ || !ok) {  // Finished, or the server is shutting down.
      delete this;
      return;
    }
    new Call(service_, cq_);  // Keep the same number of calls requested.
    response_.set_data(request_.data());
    answered_ = true;
    responder_.Finish(response_, grpc::Status::OK, this);
  }

 private:
  v1::EchoService::AsyncService& service_;
  grpc::ServerCompletionQueue& cq_;
  grpc::ServerContext context_;
  v1::EchoMessage request_;
  v1::EchoMessage response_;
  grpc::ServerAsyncResponseWriter<v1::EchoMessage> responder_;
  bool answered_ = false;
};

void poll(grpc::ServerCompletionQueue& cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) static_cast<Call*>(tag)->proceed(ok);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Echo server on gRPC's completion-queue async API"};
  std::string listen = "127.0.0.1:0";
  std::string port_file;
  long threads = std::max(1u, std::thread::hardware_concurrency());
  long ahead = 64;
  app.option_defaults()->always_capture_default();
  app.add_option("--listen", listen, "host:port (port 0: any free port)");
  app.add_option("--port-file", port_file, "Write the bound port here once serving");
  app.add_option("--threads", threads, "Completion queues, one polling thread each")
      ->check(CLI::PositiveNumber);
  app.add_option("--ahead", ahead, "Calls requested ahead on each queue")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  sigset_t signals = block_stop_signals();

  v1::EchoService::AsyncService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  for (long i = 0; i < threads; ++i) queues.push_back(builder.AddCompletionQueue());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::vector<std::thread> pollers;
  for (auto& cq : queues) {
    for (long i = 0; i < ahead; ++i) new Call(service, *cq);
    pollers.emplace_back(poll, std::ref(*cq));
  }
  write_port_file(port_file, port);
  std::fprintf(stderr, "echo_cq_server listening on port %d with %ld CQ thread(s)\n", port,
               threads);

  int signal = 0;
  sigwait(&signals, &signal);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  for (auto& cq : queues) cq->Shutdown();
  for (auto& t : pollers) t.join();
  return 0;
}
