// example_worker: a worker process with a few kinds, to run tasks on.
//
//   wordcount {text}               -> {words, lines, chars}
//   sha256 {data, rounds?}         -> {hex}: SHA-256 applied `rounds` times
//                                     (default 1), on a blocking thread
//   hold {seconds}                 -> {worker, attempt}: sleeps, sending a
//                                     heartbeat every 100 ms
//   flaky {succeed_on_attempt}     -> {attempt}: fails ("Flaky") before that
//                                     attempt
//   raise {type?, message?, non_retryable?}  fails with that error
//
// With --events-file, appends "<event> <task id> <attempt> <steady ns>"
// lines (started, cancelled, finished) for tests to read.
#include "client/worker.h"

#include <openssl/evp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/errors.h"
#include "core/sleep.h"

namespace {

using taskwire::CancelledError;
using taskwire::EventLoop;
using taskwire::Task;
using taskwire::client::HandlerError;
using taskwire::client::Value;
using taskwire::client::Worker;
using taskwire::client::WorkerOptions;
using taskwire::client::WorkerTaskContext;

const Value& field(const Value& args, const std::string& name) {
  static const Value kNull;
  if (!args.has_struct_value()) return kNull;
  auto it = args.struct_value().fields().find(name);
  return it == args.struct_value().fields().end() ? kNull : it->second;
}

Value number(double n) {
  Value value;
  value.set_number_value(n);
  return value;
}

class Events {
 public:
  explicit Events(std::string path) : path_(std::move(path)) {}
  void record(const std::string& event, const WorkerTaskContext& context) {
    if (path_.empty()) return;
    auto now = std::chrono::steady_clock::now().time_since_epoch();
    std::lock_guard lock(mutex_);
    std::ofstream(path_, std::ios::app)
        << event << " " << context.task_id() << " " << context.attempt() << " "
        << std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() << "\n";
  }

 private:
  std::string path_;
  std::mutex mutex_;
};

std::string sha256_hex(std::string data, int rounds) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  for (int i = 0; i < rounds; ++i) {
    EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
    data.assign(reinterpret_cast<char*>(digest), size);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char byte : data) {
    hex += kHex[byte >> 4];
    hex += kHex[byte & 15];
  }
  return hex;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"example_worker: runs wordcount, sha256, hold, flaky and raise tasks"};
  WorkerOptions options;
  std::string events_path;
  app.add_option("--server", options.target, "taskwired's host:port")->envname("TASKWIRE_SERVER");
  app.add_option("--identity", options.identity, "Name in the server's logs (default host:pid)");
  app.add_option("--credits", options.credits, "Tasks run at once")->check(CLI::PositiveNumber);
  app.add_option("--events-file", events_path, "Append task events here (for tests)");
  CLI11_PARSE(app, argc, argv);

  // SIGTERM and SIGINT are blocked before any thread starts (gRPC's start
  // with the Worker's channel), so that they inherit the mask and only the
  // sigwait thread below takes them. A thread that left them unblocked would
  // get them with the default action, which kills the process, or, as a
  // container's PID 1, is ignored.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  EventLoop loop;
  Worker worker(loop, options);
  Events events(events_path);
  const std::string identity = options.identity;

  worker.handle("wordcount", [](const Value& args, WorkerTaskContext&) -> Task<Value> {
    const std::string& text = field(args, "text").string_value();
    std::istringstream in(text);
    std::string word;
    double words = 0;
    while (in >> word) ++words;
    double lines = 0;
    for (char c : text) lines += c == '\n';
    if (!text.empty() && text.back() != '\n') ++lines;
    Value result;
    auto& fields = *result.mutable_struct_value()->mutable_fields();
    fields["words"] = number(words);
    fields["lines"] = number(lines);
    fields["chars"] = number(static_cast<double>(text.size()));
    co_return result;
  });

  worker.handle_blocking("sha256", [](const Value& args, const WorkerTaskContext&) {
    int rounds = static_cast<int>(field(args, "rounds").number_value());
    Value result;
    (*result.mutable_struct_value()->mutable_fields())["hex"].set_string_value(
        sha256_hex(field(args, "data").string_value(), rounds < 1 ? 1 : rounds));
    return result;
  });

  worker.handle("hold", [&](const Value& args, WorkerTaskContext& context) -> Task<Value> {
    events.record("started", context);
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                     std::chrono::duration<double>(field(args, "seconds").number_value()));
    bool cancelled = false;
    try {
      while (std::chrono::steady_clock::now() < until) {
        co_await taskwire::sleep(std::chrono::milliseconds(100));
        context.heartbeat();
      }
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      events.record("cancelled", context);
      throw CancelledError();
    }
    events.record("finished", context);
    Value result;
    auto& fields = *result.mutable_struct_value()->mutable_fields();
    fields["worker"].set_string_value(identity);
    fields["attempt"] = number(context.attempt());
    co_return result;
  });

  worker.handle("flaky", [&](const Value& args, WorkerTaskContext& context) -> Task<Value> {
    events.record("started", context);
    if (context.attempt() < field(args, "succeed_on_attempt").number_value())
      throw HandlerError("Flaky", "attempt " + std::to_string(context.attempt()) + " fails", false);
    Value result;
    (*result.mutable_struct_value()->mutable_fields())["attempt"] = number(context.attempt());
    co_return result;
  });

  worker.handle("raise", [](const Value& args, WorkerTaskContext&) -> Task<Value> {
    std::string type = field(args, "type").string_value();
    throw HandlerError(type.empty() ? "Failure" : type, field(args, "message").string_value(),
                       field(args, "non_retryable").bool_value());
    co_return Value();
  });

  // SIGTERM and SIGINT stop the worker: its stream closes, and the server
  // hands its running tasks to other workers.
  std::thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    worker.stop();
  }).detach();

  loop.run(worker.run());
  return 0;
}
