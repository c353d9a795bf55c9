#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace taskwire::cli {

// A table for people: a header row and columns padded to their widest cell,
// two spaces apart, nothing trailing. The last column is not padded, so a
// long result there does not widen every row.
class Table {
 public:
  explicit Table(std::vector<std::string> header);

  // Cells beyond the header's width are dropped; missing ones are empty.
  void add_row(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }

  void print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace taskwire::cli
