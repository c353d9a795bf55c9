// stream_floor: what one message there and one message back cost between
// two processes on 127.0.0.1 on a bare gRPC bidirectional stream, with no
// taskwire code: the transport's floor under a worker round trip
// (docs/benchmarks-workers.md, "The transport's floor"). Four modes, each
// its round trips one at a time, after a warm-up:
//
//   stream-read-early  bidi stream; each side posts its next Read as soon
//                      as one completes, as a serving stream does
//   stream-read-late   bidi stream; each side posts its next Read only
//                      after it has started its Write
//   unary              one unary call per round trip
//   tcp                raw TCP (TCP_NODELAY), blocking send and recv
//
// gRPC runs on the completion-queue API on both ends, one thread each
// waiting in CompletionQueue::Next, as taskwire's loop threads poll their
// queues (rpc/cq_poller.h). Messages are 78 bytes there (an assignment's
// size) and 59 back (a result's), serialized; raw TCP sends as many bytes.
//
// This process is the client. It starts itself again with --serve as the
// server, which prints its gRPC and TCP ports on its first line, and stops
// it by closing its standard input.
//
// Usage: stream_floor [samples (5000)] [warm-up (500)] [modes (all), comma-separated]
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/child_process.h"
#include "bench/proc_stats.h"
#include "bench/workers/pingpong_bench.h"
#include "pingpong.grpc.pb.h"

namespace {

namespace pb = taskwire::bench::workers::v1;
using taskwire::bench::pingpong::count_argument;
using taskwire::bench::pingpong::kPingBytes;
using taskwire::bench::pingpong::kPongBytes;
using taskwire::bench::pingpong::load_average;
using taskwire::bench::pingpong::make_ping;
using taskwire::bench::pingpong::make_pong;
using Clock = std::chrono::steady_clock;

// The client metadata that tells the server when to post its next Read.
constexpr char kReadOrderKey[] = "pingpong-read";

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + (errno != 0 ? std::string(": ") + std::strerror(errno) : ""));
}

// ---- Raw TCP helpers (both ends) ----

void set_no_delay(int fd) {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) fail("TCP_NODELAY");
}

// Blocks until `size` bytes have come; false at end of stream.
bool receive_exactly(int fd, char* data, std::size_t size) {
  while (size > 0) {
    ssize_t got = ::recv(fd, data, size, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    data += got;
    size -= static_cast<std::size_t>(got);
  }
  return true;
}

bool send_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t sent = ::send(fd, data, size, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    data += sent;
    size -= static_cast<std::size_t>(sent);
  }
  return true;
}

// ---- The server process ----

// A completion-queue tag: what to do with its event.
class Tag {
 public:
  virtual void on_event(bool ok) = 0;

 protected:
  ~Tag() = default;
};

// A member function of T as a tag.
template <typename T>
class Step final : public Tag {
 public:
  Step(T* self, void (T::*step)(bool)) : self_(self), step_(step) {}
  void on_event(bool ok) override { (self_->*step_)(ok); }

 private:
  T* self_;
  void (T::*step_)(bool);
};

// One Exchange stream: a Pong written for each Ping read, one Write in
// flight at a time, a Read always posted. Frees itself once finished.
class ServerStream {
 public:
  ServerStream(pb::PingPongService::AsyncService& service, grpc::ServerCompletionQueue& queue)
      : service_(service), queue_(queue), stream_(&context_) {
    service_.RequestExchange(&context_, &stream_, &queue_, &queue_, &started_);
  }

 private:
  void on_started(bool ok) {
    if (!ok) {  // The server is shutting down.
      delete this;
      return;
    }
    new ServerStream(service_, queue_);  // The next client's.
    auto order = context_.client_metadata().find(kReadOrderKey);
    read_late_ = order != context_.client_metadata().end() && order->second == "late";
    read();
  }

  void read() { stream_.Read(&ping_, &read_done_); }

  void on_read(bool ok) {
    if (!ok) {  // The client half-closed (or went away).
      half_closed_ = true;
      finish_when_written();
      return;
    }
    if (read_late_) {
      answer();
      read();
    } else {
      read();
      answer();
    }
  }

  void answer() {
    if (writing_) {
      ++queued_;  // The client sent again before our last Write completed.
      return;
    }
    write();
  }

  void write() {
    writing_ = true;
    stream_.Write(pong_, &write_done_);
  }

  void on_write(bool ok) {
    writing_ = false;
    if (!ok) queued_ = 0;
    if (queued_ > 0) {
      --queued_;
      write();
      return;
    }
    finish_when_written();
  }

  void finish_when_written() {
    if (!half_closed_ || writing_ || finishing_) return;
    finishing_ = true;
    stream_.Finish(grpc::Status::OK, &finished_);
  }

  void on_finished(bool) { delete this; }

  pb::PingPongService::AsyncService& service_;
  grpc::ServerCompletionQueue& queue_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<pb::Pong, pb::Ping> stream_;
  pb::Ping ping_;
  const pb::Pong pong_ = make_pong();
  bool read_late_ = false;
  bool writing_ = false;
  int queued_ = 0;
  bool half_closed_ = false;
  bool finishing_ = false;
  Step<ServerStream> started_{this, &ServerStream::on_started};
  Step<ServerStream> read_done_{this, &ServerStream::on_read};
  Step<ServerStream> write_done_{this, &ServerStream::on_write};
  Step<ServerStream> finished_{this, &ServerStream::on_finished};
};

// One Echo call: requested, answered, freed.
class ServerCall {
 public:
  ServerCall(pb::PingPongService::AsyncService& service, grpc::ServerCompletionQueue& queue)
      : service_(service), queue_(queue), responder_(&context_) {
    service_.RequestEcho(&context_, &ping_, &responder_, &queue_, &queue_, &requested_);
  }

 private:
  void on_requested(bool ok) {
    if (!ok) {
      delete this;
      return;
    }
    new ServerCall(service_, queue_);
    responder_.Finish(pong_, grpc::Status::OK, &finished_);
  }

  void on_finished(bool) { delete this; }

  pb::PingPongService::AsyncService& service_;
  grpc::ServerCompletionQueue& queue_;
  grpc::ServerContext context_;
  pb::Ping ping_;
  const pb::Pong pong_ = make_pong();
  grpc::ServerAsyncResponseWriter<pb::Pong> responder_;
  Step<ServerCall> requested_{this, &ServerCall::on_requested};
  Step<ServerCall> finished_{this, &ServerCall::on_finished};
};

// Answers kPingBytes with kPongBytes, on one connection at a time, on a
// thread of its own.
class TcpServer {
 public:
  TcpServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listener_ < 0) fail("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0) fail("bind");
    if (::listen(listener_, 4) != 0) fail("listen");
    if (::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      fail("getsockname");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TcpServer() {
    ::shutdown(listener_, SHUT_RDWR);  // Ends the accept() that waits.
    thread_.join();
    ::close(listener_);
  }
  int port() const { return port_; }

 private:
  void serve() {
    for (;;) {
      int connection = ::accept(listener_, nullptr, nullptr);
      if (connection < 0) {
        if (errno == EINTR) continue;
        return;
      }
      set_no_delay(connection);
      std::array<char, kPingBytes> ping{};
      std::array<char, kPongBytes> pong{};
      while (receive_exactly(connection, ping.data(), ping.size()) &&
             send_all(connection, pong.data(), pong.size())) {
      }
      ::close(connection);
    }
  }

  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// --serve: prints "GRPC_PORT TCP_PORT" and serves until stdin closes.
int serve() {
  taskwire::bench::pingpong::PingPongServer serving;
  auto& service = serving.service;
  auto& queue = serving.queue;
  // Two of each requested ahead, so that the next client never waits for one.
  for (int i = 0; i < 2; ++i) {
    new ServerStream(service, *queue);
    new ServerCall(service, *queue);
  }
  std::thread poller([&] {
    void* tag = nullptr;
    bool ok = false;
    while (queue->Next(&tag, &ok)) static_cast<Tag*>(tag)->on_event(ok);
  });
  TcpServer tcp;
  std::printf("%d %d\n", serving.port, tcp.port());
  std::fflush(stdout);

  serving.serve_until_stdin_closes(poller);
  return 0;
}

// ---- The client (this process) ----

// The server process's two ports, from its first line of output.
struct ServerPorts {
  int grpc = 0;
  int tcp = 0;
};

ServerPorts ports_of(const taskwire::bench::ChildProcess& server) {
  ServerPorts ports;
  std::istringstream(server.first_line()) >> ports.grpc >> ports.tcp;
  if (ports.grpc == 0 || ports.tcp == 0) {
    throw std::runtime_error("the server process did not start (it said '" + server.first_line() +
                             "')");
  }
  return ports;
}

// The client's operations; each has one tag, as one of each is in flight.
enum Op { kStart, kWrite, kRead, kWritesDone, kFinish, kOps };

void* tag(Op op) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(op) + 1); }

// The client's completion queue, waited on by this thread alone. Keeps an
// event that comes before the one awaited, and the time each was taken.
class Events {
 public:
  explicit Events(grpc::CompletionQueue& queue) : queue_(queue) {}

  // Waits for `op`'s event; returns its ok.
  bool await(Op op) {
    while (!seen_[op]) {
      void* got = nullptr;
      bool ok = false;
      if (!queue_.Next(&got, &ok)) throw std::runtime_error("the completion queue shut down");
      auto index = reinterpret_cast<std::uintptr_t>(got) - 1;
      seen_[index] = true;
      ok_[index] = ok;
      at_[index] = Clock::now();
    }
    seen_[op] = false;
    return ok_[op];
  }
  // When `op`'s last event was taken from the queue.
  Clock::time_point at(Op op) const { return at_[op]; }

 private:
  grpc::CompletionQueue& queue_;
  std::array<bool, kOps> seen_{};
  std::array<bool, kOps> ok_{};
  std::array<Clock::time_point, kOps> at_{};
};

void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what + " failed");
}

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

void drain(grpc::CompletionQueue& queue) {
  queue.Shutdown();
  void* ignored_tag;
  bool ignored_ok;
  while (queue.Next(&ignored_tag, &ignored_ok)) {
  }
}

// Round trips on one Exchange stream: from the start of the Ping's Write
// to the Pong's Read completing.
std::vector<double> stream_round_trips(const std::shared_ptr<grpc::Channel>& channel,
                                       bool read_late, int warmup, int samples) {
  auto stub = pb::PingPongService::NewStub(channel);
  grpc::CompletionQueue queue;
  Events events(queue);
  grpc::ClientContext context;
  context.AddMetadata(kReadOrderKey, read_late ? "late" : "early");
  auto stream = stub->AsyncExchange(&context, &queue, tag(kStart));
  require(events.await(kStart), "starting the stream");
  const pb::Ping ping = make_ping();
  pb::Pong pong;
  if (!read_late) stream->Read(&pong, tag(kRead));
  std::vector<double> result;
  result.reserve(samples);
  for (int i = 0; i < warmup + samples; ++i) {
    auto start = Clock::now();
    stream->Write(ping, tag(kWrite));
    if (read_late) stream->Read(&pong, tag(kRead));
    require(events.await(kRead), "Read");
    Clock::time_point end = events.at(kRead);
    if (pong.ByteSizeLong() != kPongBytes) throw std::runtime_error("a Pong of the wrong size");
    if (!read_late) stream->Read(&pong, tag(kRead));  // As soon as one completes.
    require(events.await(kWrite), "Write");
    if (i >= warmup) result.push_back(micros(end - start));
  }
  stream->WritesDone(tag(kWritesDone));
  require(events.await(kWritesDone), "WritesDone");
  if (!read_late) events.await(kRead);  // Fails once the server has finished.
  grpc::Status status;
  stream->Finish(&status, tag(kFinish));
  events.await(kFinish);
  if (!status.ok()) throw std::runtime_error("the stream ended with " + status.error_message());
  drain(queue);
  return result;
}

// Unary Echo calls, one at a time: from the call's start to its Finish.
std::vector<double> unary_round_trips(const std::shared_ptr<grpc::Channel>& channel, int warmup,
                                      int samples) {
  auto stub = pb::PingPongService::NewStub(channel);
  grpc::CompletionQueue queue;
  Events events(queue);
  const pb::Ping ping = make_ping();
  std::vector<double> result;
  result.reserve(samples);
  for (int i = 0; i < warmup + samples; ++i) {
    auto start = Clock::now();
    grpc::ClientContext context;
    pb::Pong pong;
    grpc::Status status;
    auto call = stub->AsyncEcho(&context, ping, &queue);
    call->Finish(&pong, &status, tag(kFinish));
    require(events.await(kFinish) && status.ok(), "Echo");
    if (i >= warmup) result.push_back(micros(events.at(kFinish) - start));
  }
  drain(queue);
  return result;
}

// Raw TCP: from the start of send() to the last byte of the answer read.
std::vector<double> tcp_round_trips(int port, int warmup, int samples) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) fail("connect");
  set_no_delay(fd);
  std::array<char, kPingBytes> ping{};
  std::array<char, kPongBytes> pong{};
  std::vector<double> result;
  result.reserve(samples);
  for (int i = 0; i < warmup + samples; ++i) {
    auto start = Clock::now();
    if (!send_all(fd, ping.data(), ping.size()) || !receive_exactly(fd, pong.data(), pong.size())) {
      throw std::runtime_error("the TCP server closed the connection");
    }
    if (i >= warmup) result.push_back(micros(Clock::now() - start));
  }
  ::close(fd);
  return result;
}

const std::vector<std::string> kModes = {"stream-read-early", "stream-read-late", "unary", "tcp"};

std::vector<std::string> parse_modes(const std::string& text) {
  if (text == "all") return kModes;
  std::vector<std::string> modes;
  std::istringstream in(text);
  for (std::string mode; std::getline(in, mode, ',');) {
    if (std::find(kModes.begin(), kModes.end(), mode) == kModes.end()) {
      throw std::invalid_argument("modes: '" + mode +
                                  "' is not one of stream-read-early, stream-read-late, unary, "
                                  "tcp (or 'all')");
    }
    modes.push_back(mode);
  }
  return modes;
}

void print_row(const std::string& mode, std::vector<double> values) {
  std::sort(values.begin(), values.end());
  double mean = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  std::printf("%-20s %8.1f %8.1f %8.1f %8.1f\n", mode.c_str(),
              taskwire::bench::quantile(values, 0.5), taskwire::bench::quantile(values, 0.9),
              taskwire::bench::quantile(values, 0.99), mean);
  std::fflush(stdout);
}

int run(int samples, int warmup, const std::vector<std::string>& modes) {
  if (make_ping().ByteSizeLong() != kPingBytes || make_pong().ByteSizeLong() != kPongBytes) {
    throw std::logic_error("the messages are not of the sizes intended");
  }
  std::printf("load average at start: %s\n", load_average().c_str());
  std::printf(
      "%d round trips per mode after %d of warm-up, one at a time; %zu bytes there, %zu "
      "back\n",
      samples, warmup, kPingBytes, kPongBytes);
  taskwire::bench::ChildProcess server({"--serve"});
  const ServerPorts ports = ports_of(server);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(ports.grpc),
                                     grpc::InsecureChannelCredentials());
  std::printf("%-20s %8s %8s %8s %8s\n", "mode (us)", "p50", "p90", "p99", "mean");
  for (const auto& mode : modes) {
    if (mode == "stream-read-early") {
      print_row(mode, stream_round_trips(channel, false, warmup, samples));
    } else if (mode == "stream-read-late") {
      print_row(mode, stream_round_trips(channel, true, warmup, samples));
    } else if (mode == "unary") {
      print_row(mode, unary_round_trips(channel, warmup, samples));
    } else {
      print_row(mode, tcp_round_trips(ports.tcp, warmup, samples));
    }
  }
  std::printf("load average at end: %s\n", load_average().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 2 && std::string(argv[1]) == "--serve") return serve();
    if (argc > 4) {
      throw std::invalid_argument(
          "usage: stream_floor [samples (5000)] [warm-up (500)] [modes (all), comma-separated]");
    }
    int samples = argc > 1 ? count_argument(argv[1], "samples", false) : 5000;
    int warmup = argc > 2 ? count_argument(argv[2], "warm-up", true) : 500;
    std::vector<std::string> modes = parse_modes(argc > 3 ? argv[3] : "all");
    return run(samples, warmup, modes);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stream_floor: %s\n", e.what());
    return 1;
  }
}
