#pragma once

#include <cstddef>

namespace taskwire::detail {

// Memory for coroutine frames and task states: per-thread free lists by
// size class, carved from large chunks. A task costs two allocations;
// malloc's per-call cost and per-block header were the largest part of
// creating a task and of the memory a sleeping task holds.
//
// Under AddressSanitizer this is plain operator new/delete, so that
// use-after-free stays detectable.
void* allocate_frame(std::size_t size);
void deallocate_frame(void* pointer, std::size_t size) noexcept;

}  // namespace taskwire::detail
