#include "conveyor/runtime/buffer_pool.h"

#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace conveyor {
namespace {

uint8_t* allocate_block(size_t bytes) {
  const size_t alignment = bytes >= (size_t{2} << 20) ? (size_t{2} << 20) : 64;
  const size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  void* data = std::aligned_alloc(alignment, rounded ? rounded : alignment);
  if (!data) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (alignment > 64) madvise(data, rounded, MADV_HUGEPAGE);  // fewer page faults on first touch
#endif
  return static_cast<uint8_t*>(data);
}

}  // namespace

BufferPool::~BufferPool() {
  for (Block& block : free_) std::free(block.data);
}

std::shared_ptr<uint8_t> BufferPool::acquire(size_t bytes) {
  Block block{nullptr, bytes};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t best = free_.size();
    for (size_t i = 0; i < free_.size(); ++i)
      if (free_[i].bytes >= bytes && free_[i].bytes - bytes <= bytes / 4 &&
          (best == free_.size() || free_[i].bytes < free_[best].bytes))
        best = i;
    if (best < free_.size()) {
      block = free_[best];
      free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
      free_bytes_ -= block.bytes;
    }
  }
  if (!block.data) block.data = allocate_block(bytes);
  std::weak_ptr<BufferPool> pool = weak_from_this();
  return std::shared_ptr<uint8_t>(block.data, [pool, block](uint8_t*) {
    if (auto owner = pool.lock())
      owner->release(block);
    else
      std::free(block.data);
  });
}

size_t BufferPool::free_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return free_bytes_;
}

void BufferPool::release(Block block) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (free_.size() < max_free_ && free_bytes_ + block.bytes <= max_free_bytes_) {
    free_.push_back(block);
    free_bytes_ += block.bytes;
  } else {
    std::free(block.data);
  }
}

}  // namespace conveyor
