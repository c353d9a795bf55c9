#pragma once

#include <cstddef>
#include <deque>

namespace taskwire::rpc {

// A batch stops growing at this many messages or bytes (unless its first
// message alone is bigger), well under gRPC's default receive limit of
// 4 MiB.
inline constexpr int kMaxBatchMessages = 1024;
inline constexpr std::size_t kMaxBatchBytes = 1024 * 1024;

// The next message to write on a stream whose messages can carry a batch of
// their own kind (`batch().messages()`, as the worker protocol's do): the
// front of `queue` alone if the peer takes no batches or it is the only
// one, else as many from the front as fit one batch. Takes them from
// `queue`; `queue` must not be empty.
template <typename Message>
void take_next_write(std::deque<Message>& queue, bool peer_takes_batches, Message& out) {
  if (!peer_takes_batches || queue.size() == 1) {
    out = std::move(queue.front());
    queue.pop_front();
    return;
  }
  out.Clear();
  auto& batch = *out.mutable_batch()->mutable_messages();
  std::size_t bytes = 0;
  while (!queue.empty() && batch.size() < kMaxBatchMessages) {
    bytes += queue.front().ByteSizeLong();
    if (!batch.empty() && bytes > kMaxBatchBytes) break;
    batch.Add(std::move(queue.front()));
    queue.pop_front();
  }
}

}  // namespace taskwire::rpc
