#include "client/cli/progress_bar.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

namespace taskwire::cli {
namespace {

std::size_t terminal_columns() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

}  // namespace

bool want_progress(std::size_t total) { return total >= 2 && isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(std::string label, std::size_t total)
    : label_(std::move(label)), total_(total), enabled_(want_progress(total)) {
  draw();
}

ProgressBar::~ProgressBar() { clear(); }

void ProgressBar::update(std::size_t done) {
  done_ = std::min(done, total_);
  draw();
}

void ProgressBar::draw() {
  if (!enabled_) return;
  std::string count = std::to_string(done_) + "/" + std::to_string(total_) + " done";
  // Stay within the terminal's width: a wrapped line cannot be redrawn in
  // place with '\r'.
  std::size_t columns = terminal_columns();
  std::size_t fixed = label_.size() + count.size() + 5;  // " [", "] ", " " and a spare column
  std::size_t width = columns > fixed + 10 ? std::min<std::size_t>(40, columns - fixed) : 10;
  std::size_t filled = total_ == 0 ? width : width * done_ / total_;
  std::string bar = "\r" + label_ + " [" + std::string(filled, '#') +
                    std::string(width - filled, '.') + "] " + count + " ";
  std::fputs(bar.c_str(), stderr);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!enabled_ || !drawn_) return;
  // Carriage return, then erase to the end of the line.
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace taskwire::cli
