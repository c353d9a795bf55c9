#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace taskwire::testing {

// A real taskwired process on a free loopback port, for tests: started from
// the test's runfiles, stopped with SIGTERM (and checked to exit 0).
class TaskwiredProcess {
 public:
  explicit TaskwiredProcess(std::vector<std::string> extra_flags = {})
      : TaskwiredProcess("127.0.0.1:0", std::move(extra_flags)) {}
  // On a given address, such as a restarted server's old port.
  TaskwiredProcess(std::string listen, std::vector<std::string> extra_flags) {
    const char* srcdir = std::getenv("TEST_SRCDIR");
    const char* tmpdir = std::getenv("TEST_TMPDIR");
    if (srcdir == nullptr || tmpdir == nullptr) throw std::runtime_error("run under bazel test");
    std::string binary = std::string(srcdir) + "/taskwire/server/taskwired";
    port_file_ = std::string(tmpdir) + "/port." + std::to_string(::getpid()) + "." +
                 std::to_string(counter()++);
    std::vector<std::string> args = {binary,     "--listen",    listen, "--port-file",
                                     port_file_, "--log-level", "warn"};
    args.insert(args.end(), extra_flags.begin(), extra_flags.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream file(port_file_);
      if (file >> port_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // Polling a file, bounded above.
    }
    stop();
    throw std::runtime_error("taskwired did not start");
  }
  TaskwiredProcess(const TaskwiredProcess&) = delete;
  TaskwiredProcess& operator=(const TaskwiredProcess&) = delete;
  ~TaskwiredProcess() { stop(); }

  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  // SIGTERM and wait; the exit status (0 for a clean drain).
  int stop() {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_status_;
  }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }

  std::string port_file_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_status_ = -1;
};

}  // namespace taskwire::testing
