#pragma once

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace taskwire::bench {

// This binary again, with `args`, in a child process (a benchmark's server
// or worker, apart from its client as in production): its first line of
// output is kept (a port, say); closing its stdin stops it, and the
// destructor waits for it.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> args) {
    int to_child[2], from_child[2];
    if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) throw std::runtime_error("pipe");
    std::vector<char*> argv{const_cast<char*>("child")};
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      ::dup2(to_child[0], 0);
      ::dup2(from_child[1], 1);
      ::close(to_child[1]);
      ::close(from_child[0]);
      ::execv("/proc/self/exe", argv.data());
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    stdin_ = to_child[1];
    char c;
    while (::read(from_child[0], &c, 1) == 1 && c != '\n') first_line_ += c;
    ::close(from_child[0]);
    if (first_line_.empty()) throw std::runtime_error("the child process did not start");
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    ::close(stdin_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

  const std::string& first_line() const { return first_line_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::string first_line_;
};

}  // namespace taskwire::bench
