#include "core/detail/frame_allocator.h"

#include <new>
#include <vector>

namespace taskwire::detail {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kPooled = false;
#else
constexpr bool kPooled = true;
#endif

constexpr std::size_t kGranule = 16;
constexpr std::size_t kMaxPooled = 1024;
constexpr std::size_t kClasses = kMaxPooled / kGranule;
constexpr std::size_t kChunkBytes = 256 * 1024;

struct FreeBlock {
  FreeBlock* next;
};

// One thread's pool. Blocks freed on another thread join that thread's
// pool: frames are normally freed where they were made (the loop thread).
// Chunks are never returned: a loop's peak of tasks is likely to recur.
class Pool {
 public:
  void* allocate(std::size_t size_class) {
    FreeBlock*& head = free_[size_class];
    if (head != nullptr) {
      FreeBlock* block = head;
      head = block->next;
      return block;
    }
    return carve((size_class + 1) * kGranule);
  }
  void deallocate(void* pointer, std::size_t size_class) noexcept {
    auto* block = static_cast<FreeBlock*>(pointer);
    block->next = free_[size_class];
    free_[size_class] = block;
  }

 private:
  void* carve(std::size_t bytes) {
    if (static_cast<std::size_t>(end_ - next_) < bytes) {
      next_ = static_cast<char*>(::operator new(kChunkBytes));
      end_ = next_ + kChunkBytes;
    }
    void* block = next_;
    next_ += bytes;
    return block;
  }

  FreeBlock* free_[kClasses] = {};
  char* next_ = nullptr;
  char* end_ = nullptr;
};

thread_local Pool t_pool;

std::size_t size_class(std::size_t size) { return (size + kGranule - 1) / kGranule - 1; }

}  // namespace

void* allocate_frame(std::size_t size) {
  if (!kPooled || size > kMaxPooled || size == 0) return ::operator new(size);
  return t_pool.allocate(size_class(size));
}

void deallocate_frame(void* pointer, std::size_t size) noexcept {
  if (!kPooled || size > kMaxPooled || size == 0) {
    ::operator delete(pointer);
    return;
  }
  t_pool.deallocate(pointer, size_class(size));
}

}  // namespace taskwire::detail
