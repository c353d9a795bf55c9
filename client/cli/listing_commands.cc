// ls and watch: commands about the tasks matching filters.
#include <algorithm>
#include <iostream>
#include <limits>

#include "client/cli/arg_parsing.h"
#include "client/cli/cli_error.h"
#include "client/cli/commands.h"
#include "client/cli/json.h"
#include "client/cli/render.h"

namespace taskwire::cli {
namespace {

// The server's largest page (ListTasksRequest.page_size).
constexpr std::uint32_t kMaxPageSize = 1000;

template <typename Request>
void add_filters(Request& request, const std::vector<std::string>& states, const std::string& kind,
                 const std::vector<std::string>& label_pairs) {
  for (const auto& state : states) request.add_states(parse_state(state));
  request.set_kind(kind);
  for (auto& [key, value] : build_labels(label_pairs)) (*request.mutable_labels())[key] = value;
}

}  // namespace

ExitCode ls_command(TaskClient& client, bool json, const ListOptions& options) {
  v1::ListTasksRequest request;
  add_filters(request, options.states, options.kind, options.label_pairs);
  std::uint32_t limit =
      options.limit.empty()
          ? std::numeric_limits<std::uint32_t>::max()
          : parse_positive_count(options.limit, std::numeric_limits<std::uint32_t>::max());
  std::vector<v1::Task> tasks;
  std::uint32_t listed = 0;
  while (listed < limit) {
    request.set_page_size(static_cast<std::int32_t>(std::min(kMaxPageSize, limit - listed)));
    v1::ListTasksResponse page = client.list_tasks(request);
    for (auto& task : *page.mutable_tasks()) {
      if (listed == limit) break;
      ++listed;
      // JSON goes out a page at a time, so a long listing starts at once
      // and never sits whole in memory; a table needs every row to size
      // its columns.
      if (json) {
        std::cout << to_json(task) << '\n';
      } else {
        tasks.push_back(std::move(task));
      }
    }
    std::cout.flush();
    if (page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  if (!json) print_task_list(std::cout, tasks);
  return ExitCode::kOk;
}

ExitCode watch_command(TaskClient& client, bool json, const WatchOptions& options) {
  v1::WatchTasksRequest request;
  for (const auto& id : options.ids) request.add_ids(id);
  add_filters(request, options.states, options.kind, options.label_pairs);
  client.watch_tasks(request, [&](const v1::TaskEvent& event) {
    // Flushed line by line: whoever reads a watch reads it as it happens.
    std::cout << (json ? to_json(event) : event_line(event)) << std::endl;
  });
  // The server ends a watch only when it shuts down: worth a non-zero exit
  // for a script that expected it to run until stopped.
  throw CliError(ExitCode::kUnreachable,
                 "the server at " + client.server() + " ended the watch (shutting down)");
}

}  // namespace taskwire::cli
