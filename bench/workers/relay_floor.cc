// relay_floor: the least a worker round trip can add to a call with gRPC
// on this machine, with no taskwire code. Three processes on 127.0.0.1,
// as worker_bench's: a client, a server and a worker. The client makes
// unary calls one at a time, in turn:
//
//   echo   the server answers at once (a built-in task's shape)
//   relay  the server writes the call's Ping on the worker's stream, the
//          worker answers with a Pong, and that Pong is the call's
//          answer (a worker task's shape)
//
// The difference of the two medians is what worker_bench's "worker round
// trip added" is compared with (docs/benchmarks-workers.md). Every end
// uses the completion-queue API, one thread waiting in
// CompletionQueue::Next, as taskwire's loop threads poll their queues;
// each side of the worker's stream starts its next Read only after it has
// started its Write, as taskwire's do. Messages are an assignment's size
// there and a result's back, as in stream_floor.
//
// Usage: relay_floor [samples (5000)] [warm-up (500)]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/child_process.h"
#include "bench/proc_stats.h"
#include "bench/workers/pingpong_bench.h"
#include "pingpong.grpc.pb.h"
#include "rpc/cq_tag.h"

namespace {

namespace pb = taskwire::bench::workers::v1;
using taskwire::bench::pingpong::count_argument;
using taskwire::bench::pingpong::kPongBytes;
using taskwire::bench::pingpong::load_average;
using taskwire::bench::pingpong::make_ping;
using taskwire::bench::pingpong::make_pong;
using taskwire::rpc::CqTag;
using taskwire::rpc::MemberTag;
using Clock = std::chrono::steady_clock;

void serve_queue(grpc::CompletionQueue& queue) {
  void* tag = nullptr;
  bool ok = false;
  while (queue.Next(&tag, &ok)) static_cast<CqTag*>(tag)->on_event(ok);
}

// ---- The server process ----

class RelayCall;

// The worker's stream as the server holds it: Pings written in the order
// of the calls waiting, each answered by the next Pong read.
class WorkerLink {
 public:
  WorkerLink(pb::PingPongService::AsyncService& service, grpc::ServerCompletionQueue& queue)
      : stream_(&context_) {
    service.RequestWork(&context_, &stream_, &queue, &queue, &connected_);
  }

  void pass_on(RelayCall* call);

 private:
  void on_connected(bool ok) {
    connected_ok_ = ok;
    write_next();
  }
  void write_next();
  void on_written(bool) {
    writing_ = false;
    write_next();
  }
  void on_read(bool ok);

  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<pb::Ping, pb::Pong> stream_;
  bool connected_ok_ = false;
  bool writing_ = false;
  bool reading_ = false;
  std::deque<RelayCall*> to_write_;
  std::deque<RelayCall*> to_answer_;
  pb::Pong pong_;
  MemberTag<WorkerLink, &WorkerLink::on_connected> connected_{this};
  MemberTag<WorkerLink, &WorkerLink::on_written> written_{this};
  MemberTag<WorkerLink, &WorkerLink::on_read> read_{this};
};

// One Echo or Relay call: requested, answered, freed.
class RelayCall {
 public:
  RelayCall(pb::PingPongService::AsyncService& service, grpc::ServerCompletionQueue& queue,
            WorkerLink* link)
      : service_(service), queue_(queue), link_(link), responder_(&context_) {
    if (link_ == nullptr) {
      service_.RequestEcho(&context_, &ping_, &responder_, &queue_, &queue_, &requested_);
    } else {
      service_.RequestRelay(&context_, &ping_, &responder_, &queue_, &queue_, &requested_);
    }
  }

  const pb::Ping& ping() const { return ping_; }
  void answer(const pb::Pong& pong) { responder_.Finish(pong, grpc::Status::OK, &finished_); }

 private:
  void on_requested(bool ok) {
    if (!ok) {
      delete this;
      return;
    }
    new RelayCall(service_, queue_, link_);
    if (link_ == nullptr) {
      answer(pong_);
    } else {
      link_->pass_on(this);
    }
  }
  void on_finished(bool) { delete this; }

  pb::PingPongService::AsyncService& service_;
  grpc::ServerCompletionQueue& queue_;
  WorkerLink* link_;  // Null for Echo.
  grpc::ServerContext context_;
  pb::Ping ping_;
  const pb::Pong pong_ = make_pong();
  grpc::ServerAsyncResponseWriter<pb::Pong> responder_;
  MemberTag<RelayCall, &RelayCall::on_requested> requested_{this};
  MemberTag<RelayCall, &RelayCall::on_finished> finished_{this};
};

void WorkerLink::pass_on(RelayCall* call) {
  to_write_.push_back(call);
  write_next();
}

void WorkerLink::write_next() {
  if (!connected_ok_ || writing_ || to_write_.empty()) return;
  RelayCall* call = to_write_.front();
  to_write_.pop_front();
  to_answer_.push_back(call);
  writing_ = true;
  stream_.Write(call->ping(), &written_);
  if (!reading_) {
    reading_ = true;
    stream_.Read(&pong_, &read_);
  }
}

void WorkerLink::on_read(bool ok) {
  reading_ = false;
  if (!ok) return;  // The worker went away; the benchmark is over.
  RelayCall* call = to_answer_.front();
  to_answer_.pop_front();
  call->answer(pong_);
  if (!to_answer_.empty()) {
    reading_ = true;
    stream_.Read(&pong_, &read_);
  }
}

// --serve: prints its port and serves until stdin closes.
int serve() {
  taskwire::bench::pingpong::PingPongServer serving;
  auto& service = serving.service;
  auto& queue = serving.queue;
  // One worker, whose stream lives as long as the server. Two calls of
  // each method requested ahead, so that the next never waits for one.
  auto* link = new WorkerLink(service, *queue);
  for (int i = 0; i < 2; ++i) {
    new RelayCall(service, *queue, nullptr);
    new RelayCall(service, *queue, link);
  }
  std::thread poller([&] { serve_queue(*queue); });
  std::printf("%d\n", serving.port);
  std::fflush(stdout);
  serving.serve_until_stdin_closes(poller);
  return 0;
}

// ---- The worker process ----

// Answers each Ping read with a Pong; its next Read starts after the Write.
class Worker {
 public:
  Worker(pb::PingPongService::Stub& stub, grpc::CompletionQueue& queue)
      : stream_(stub.AsyncWork(&context_, &queue, &started_)) {}

 private:
  void on_started(bool ok) {
    if (ok) stream_->Read(&ping_, &read_);
  }
  void on_read(bool ok) {
    if (!ok) return;  // The server has gone.
    stream_->Write(pong_, &written_);
    stream_->Read(&ping_, &read_);
  }
  void on_written(bool) {}

  grpc::ClientContext context_;
  pb::Ping ping_;
  const pb::Pong pong_ = make_pong();
  MemberTag<Worker, &Worker::on_started> started_{this};
  MemberTag<Worker, &Worker::on_read> read_{this};
  MemberTag<Worker, &Worker::on_written> written_{this};
  std::unique_ptr<grpc::ClientAsyncReaderWriter<pb::Pong, pb::Ping>> stream_;
};

// --work PORT: connects, says "ready", and answers until stdin closes.
int work(const std::string& port) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + port, grpc::InsecureChannelCredentials());
  auto stub = pb::PingPongService::NewStub(channel);
  grpc::CompletionQueue queue;
  Worker worker(*stub, queue);
  std::thread poller([&] { serve_queue(queue); });
  std::printf("ready\n");
  std::fflush(stdout);
  std::string ignored;
  while (std::getline(std::cin, ignored)) {
  }
  std::_Exit(0);  // The stream ends with the process; nothing to flush.
}

// ---- The client (this process) ----

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// One unary call at a time, on the client's own completion queue.
class Caller {
 public:
  explicit Caller(const std::shared_ptr<grpc::Channel>& channel)
      : stub_(pb::PingPongService::NewStub(channel)) {}
  ~Caller() {
    queue_.Shutdown();
    void* tag;
    bool ok;
    while (queue_.Next(&tag, &ok)) {
    }
  }

  // From the call's start to its answer taken from the queue, in µs.
  double call(bool relay) {
    auto start = Clock::now();
    grpc::ClientContext context;
    pb::Pong pong;
    grpc::Status status;
    auto call = relay ? stub_->AsyncRelay(&context, ping_, &queue_)
                      : stub_->AsyncEcho(&context, ping_, &queue_);
    call->Finish(&pong, &status, this);
    void* tag = nullptr;
    bool ok = false;
    if (!queue_.Next(&tag, &ok) || !ok || !status.ok() || pong.ByteSizeLong() != kPongBytes) {
      throw std::runtime_error(std::string(relay ? "Relay" : "Echo") +
                               " failed: " + status.error_message());
    }
    return micros(Clock::now() - start);
  }

 private:
  std::unique_ptr<pb::PingPongService::Stub> stub_;
  grpc::CompletionQueue queue_;
  const pb::Ping ping_ = make_ping();
};

int run(int samples, int warmup) {
  std::printf("load average at start: %s\n", load_average().c_str());
  taskwire::bench::ChildProcess server({"--serve"});
  const std::string port = server.first_line();
  taskwire::bench::ChildProcess worker({"--work", port});
  Caller caller(grpc::CreateChannel("127.0.0.1:" + port, grpc::InsecureChannelCredentials()));
  std::vector<double> echo, relay;
  echo.reserve(samples);
  relay.reserve(samples);
  // In turn, so that a change of the machine's load weighs on both alike.
  for (int i = 0; i < warmup + samples; ++i) {
    double e = caller.call(false);
    double r = caller.call(true);
    if (i >= warmup) {
      echo.push_back(e);
      relay.push_back(r);
    }
  }
  std::sort(echo.begin(), echo.end());
  std::sort(relay.begin(), relay.end());
  using taskwire::bench::quantile;
  std::printf("%d calls of each, one at a time, in turn, after %d of warm-up\n", samples, warmup);
  std::printf("%-28s %8s %8s %8s\n", "(us)", "p50", "p90", "p99");
  std::printf("%-28s %8.1f %8.1f %8.1f\n", "echo", quantile(echo, 0.5), quantile(echo, 0.9),
              quantile(echo, 0.99));
  std::printf("%-28s %8.1f %8.1f %8.1f\n", "relay through the worker", quantile(relay, 0.5),
              quantile(relay, 0.9), quantile(relay, 0.99));
  std::printf("%-28s %8.1f\n", "added by the relay, p50",
              quantile(relay, 0.5) - quantile(echo, 0.5));
  std::printf("load average at end: %s\n", load_average().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--work") return work(argv[2]);
  try {
    if (argc == 2 && std::string(argv[1]) == "--serve") return serve();
    if (argc > 3)
      throw std::invalid_argument("usage: relay_floor [samples (5000)] [warm-up (500)]");
    int samples = argc > 1 ? count_argument(argv[1], "samples", false) : 5000;
    int warmup = argc > 2 ? count_argument(argv[2], "warm-up", true) : 500;
    return run(samples, warmup);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "relay_floor: %s\n", e.what());
    return 1;
  }
}
