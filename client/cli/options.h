#pragma once

#include <string>
#include <vector>

namespace taskwire::cli {

// What the command line said, as text: CLI11's validators (see app.cc) have
// already checked every value, and commands convert them with the parsers
// of arg_parsing.h. An empty string means the option was not given; every
// option for which an empty value would mean something rejects it.

struct GlobalOptions {
  std::string server = "127.0.0.1:50051";
  bool json = false;
};

// create, and the task half of run.
struct TaskSpec {
  std::string kind;
  std::vector<std::string> arg_pairs;
  std::string args_json;
  std::string name;
  std::vector<std::string> label_pairs;
  std::string timeout;
  std::string idempotency_key;
};

struct RunOptions {
  TaskSpec task;
  std::string wait_timeout;
};

struct AwaitOptions {
  std::string id;
  std::string timeout;
};

struct GatherOptions {
  std::vector<std::string> ids;
  bool return_exceptions = false;
  std::string timeout;
};

struct WaitOptions {
  std::vector<std::string> ids;
  std::string return_when = "all-completed";
  std::string timeout;
  std::string count;
};

struct ListOptions {
  std::vector<std::string> states;
  std::string kind;
  std::vector<std::string> label_pairs;
  std::string limit;
};

struct WatchOptions {
  std::vector<std::string> ids;
  std::vector<std::string> states;
  std::string kind;
  std::vector<std::string> label_pairs;
};

struct Options {
  GlobalOptions global;
  TaskSpec create;
  RunOptions run;
  std::string get_id;
  AwaitOptions await;
  GatherOptions gather;
  WaitOptions wait;
  std::string cancel_id;
  ListOptions ls;
  WatchOptions watch;
};

}  // namespace taskwire::cli
