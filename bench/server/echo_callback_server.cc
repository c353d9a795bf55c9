// A bare echo server on gRPC's callback API: the cheapest unary handler
// (the default reactor, finished inline on gRPC's thread). The physical
// limit for taskwired, which uses the same API.
//
//   echo_callback_server --listen 127.0.0.1:0 --port-file F
#include <grpcpp/grpcpp.h>
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>

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

class EchoService final : public v1::EchoService::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const v1::EchoMessage* request,
                                 v1::EchoMessage* response) override {
    response->set_data(request->data());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Echo server on gRPC's callback API"};
  std::string listen = "127.0.0.1:0";
  std::string port_file;
  app.add_option("--listen", listen, "host:port (port 0: any free port)");
  app.add_option("--port-file", port_file, "Write the bound port here once serving");
  CLI11_PARSE(app, argc, argv);
  sigset_t signals = block_stop_signals();

  EchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "cannot listen on %s\n", listen.c_str());
    return 1;
  }
  write_port_file(port_file, port);
  std::fprintf(stderr, "echo_callback_server listening on port %d\n", port);

  int signal = 0;
  sigwait(&signals, &signal);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  return 0;
}
