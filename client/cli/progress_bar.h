#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace taskwire::cli {

// "gather [##########..........]  5/10 done" on stderr, redrawn in place
// with '\r'. Draws only when stderr is a terminal, so logs and pipes never
// see carriage returns; otherwise every method does nothing.
class ProgressBar {
 public:
  // label: what is progressing ("gather"); total: the count at 100%.
  ProgressBar(std::string label, std::size_t total);
  // Clears the line, so that whatever is printed next starts clean.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  bool enabled() const { return enabled_; }
  void update(std::size_t done);
  void clear();

 private:
  void draw();

  std::string label_;
  std::size_t total_;
  std::size_t done_ = 0;
  bool enabled_;
  bool drawn_ = false;
};

// Whether a progress bar is worth showing: stderr is a terminal and there
// is more than one thing to count.
bool want_progress(std::size_t total);

}  // namespace taskwire::cli
