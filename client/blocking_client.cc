#include "client/blocking_client.h"

#include "core/gather.h"

namespace taskwire::client {

BlockingClient::BlockingClient(ClientOptions options)
    : client_(std::make_unique<Client>(loop_, std::move(options))) {
  thread_ = std::thread([this] {
    auto serve = [](Event& stop) -> Task<void> { co_await stop.wait(); };
    loop_.run(serve(stop_));
  });
}

BlockingClient::BlockingClient() : BlockingClient(ClientOptions()) {}

BlockingClient::~BlockingClient() {
  loop_.post([this] { stop_.set(); });
  thread_.join();
}

BlockingTask BlockingClient::create_task(std::string kind, Value args) {
  EventLoop* loop = &loop_;
  auto task = run<std::shared_ptr<RemoteTask>>(
      [kind = std::move(kind), args = std::move(args),
       loop](Client& client) mutable -> Task<std::shared_ptr<RemoteTask>> {
        // The RemoteTask lives on the loop thread and dies there too.
        co_return std::shared_ptr<RemoteTask>(
            new RemoteTask(client.create_task(std::move(kind), std::move(args))),
            [loop](RemoteTask* task) { loop->post([task] { delete task; }); });
      });
  return BlockingTask(this, std::move(task));
}

std::vector<Value> BlockingClient::gather(const std::vector<BlockingTask>& tasks,
                                          std::optional<Duration> timeout) {
  std::vector<std::shared_ptr<RemoteTask>> remote;
  for (const auto& task : tasks) remote.push_back(task.task_);
  return run<std::vector<Value>>(
      [remote](Client&) -> Task<std::vector<Value>> {
        std::vector<TaskHandle<Value>> handles;
        for (const auto& task : remote) handles.push_back(task->handle());
        co_return co_await taskwire::gather(std::move(handles));
      },
      timeout);
}

std::string BlockingTask::id() const {
  return owner_->run<std::string>([task = task_](Client&) { return task->created_id(); });
}

Value BlockingTask::result(std::optional<Duration> timeout) const {
  return owner_->run<Value>([task = task_](Client&) -> Task<Value> { co_return co_await *task; },
                            timeout);
}

void BlockingTask::cancel() const {
  owner_->run<void>([task = task_](Client&) -> Task<void> {
    task->cancel();
    co_return;
  });
}

}  // namespace taskwire::client
