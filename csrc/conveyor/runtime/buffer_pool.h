// Batch buffers: 64-byte aligned, recycled only after every owner released them (the last
// shared_ptr, e.g. the numpy array's owner in Python, returns the block to the pool). This
// avoids page-faulting a fresh 100 MB buffer for every batch without ever writing into
// memory that was handed out and is still referenced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

namespace conveyor {

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  // Keeps at most `max_free_blocks` released blocks of `max_free_bytes` in all for reuse.
  explicit BufferPool(size_t max_free_blocks, size_t max_free_bytes = SIZE_MAX)
      : max_free_(max_free_blocks), max_free_bytes_(max_free_bytes) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A block of at least `bytes` bytes (contents unspecified): a free block of that size or up
  // to a quarter larger (variable-size images rarely repeat a size exactly), else a new one.
  // Throws std::bad_alloc.
  std::shared_ptr<uint8_t> acquire(size_t bytes);
  // Bytes of the released blocks kept for reuse.
  size_t free_bytes() const;

 private:
  struct Block {
    uint8_t* data;
    size_t bytes;
  };
  void release(Block block);

  size_t max_free_, max_free_bytes_;
  mutable std::mutex mutex_;
  std::vector<Block> free_;
  size_t free_bytes_ = 0;
};

}  // namespace conveyor
