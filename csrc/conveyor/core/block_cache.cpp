#include "conveyor/core/block_cache.h"

#include <new>

namespace conveyor {

BlockCache::BlockCache(std::size_t max_cached_bytes, std::size_t max_blocks)
    : max_cached_bytes_(max_cached_bytes), max_blocks_(max_blocks) {}

BlockCache::~BlockCache() {
  for (const Block& block : blocks_) ::operator delete(block.data);
}

std::uint8_t* BlockCache::acquire(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (std::size_t i = blocks_.size(); i-- > 0;) {  // most recently released first: warmest
      if (blocks_[i].bytes == bytes) {
        std::uint8_t* data = blocks_[i].data;
        blocks_.erase(blocks_.begin() + std::ptrdiff_t(i));
        cached_bytes_ -= bytes;
        return data;
      }
    }
  }
  return static_cast<std::uint8_t*>(::operator new(bytes));
}

void BlockCache::release(std::uint8_t* block, std::size_t bytes) {
  if (block == nullptr) return;
  if (bytes == 0) bytes = 1;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (bytes <= max_cached_bytes_) {
      // Make room by dropping the oldest blocks (other sizes are likely stale).
      while (!blocks_.empty() &&
             (blocks_.size() >= max_blocks_ || cached_bytes_ + bytes > max_cached_bytes_)) {
        ::operator delete(blocks_.front().data);
        cached_bytes_ -= blocks_.front().bytes;
        blocks_.erase(blocks_.begin());
      }
      blocks_.push_back({block, bytes});
      cached_bytes_ += bytes;
      return;
    }
  }
  ::operator delete(block);
}

std::size_t BlockCache::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_bytes_;
}

BlockCache& BlockCache::shared() {
  static BlockCache* cache = new BlockCache();  // never destroyed: Python may free late
  return *cache;
}

}  // namespace conveyor
