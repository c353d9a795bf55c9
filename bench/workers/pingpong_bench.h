#pragma once

// What stream_floor and relay_floor share: their messages, the end of
// their server process, the load they report, and how they read their
// arguments.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "pingpong.grpc.pb.h"

namespace taskwire::bench::pingpong {

namespace pb = ::taskwire::bench::workers::v1;

// Serialized sizes: a worker's assignment and its result (one no-op task).
inline constexpr std::size_t kPingBytes = 78;
inline constexpr std::size_t kPongBytes = 59;
// A message of one short bytes field spends a tag byte and a length byte.
inline constexpr std::size_t kFieldOverhead = 2;

inline pb::Ping make_ping() {
  pb::Ping ping;
  ping.set_payload(std::string(kPingBytes - kFieldOverhead, 'p'));
  return ping;
}

inline pb::Pong make_pong() {
  pb::Pong pong;
  pong.set_payload(std::string(kPongBytes - kFieldOverhead, 'q'));
  return pong;
}

// The service on 127.0.0.1, at a port of the kernel's choice, its calls
// on one completion queue; throws if it cannot listen.
struct PingPongServer {
  PingPongServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    queue = builder.AddCompletionQueue();
    server = builder.BuildAndStart();
    if (!server || port == 0) throw std::runtime_error("cannot listen on 127.0.0.1");
  }

  // A child server process's end: once its standard input closes (the
  // parent is done), shuts the server and its queue down and waits for
  // the thread that serves the queue.
  void serve_until_stdin_closes(std::thread& poller) {
    std::string ignored;
    while (std::getline(std::cin, ignored)) {
    }
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    queue->Shutdown();
    poller.join();
  }

  pb::PingPongService::AsyncService service;
  std::unique_ptr<grpc::ServerCompletionQueue> queue;
  std::unique_ptr<grpc::Server> server;  // Declared last: it goes first.
  int port = 0;
};

// The machine's load averages over 1, 5 and 15 minutes.
inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// A count argument: a whole number in 0 or 1 .. 10,000,000.
inline int count_argument(const char* text, const char* name, bool zero_allowed) {
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || value < (zero_allowed ? 0 : 1) || value > 10'000'000) {
    throw std::invalid_argument(std::string(name) + ": '" + text + "' is not a whole number in " +
                                (zero_allowed ? "0" : "1") + "..10000000");
  }
  return static_cast<int>(value);
}

}  // namespace taskwire::bench::pingpong
