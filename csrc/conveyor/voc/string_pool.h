// Compact string storage for the typed reader: per-object strings repeat (a dataset has a few
// dozen class names and poses), so they are stored once and referenced by id; per-file strings
// (filenames) go into one character buffer. Neither allocates per string, and both copy and
// concatenate cheaply when the per-thread batches are joined.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor::voc {

// Distinct strings, each stored once, numbered 0, 1, ... in insertion order.
class StringPool {
 public:
  static constexpr std::uint32_t kAbsent = 0xFFFFFFFFu;

  // The id of `text`, adding it when new.
  std::uint32_t intern(std::string_view text);
  // The id of `text`, or kAbsent.
  std::uint32_t find(std::string_view text) const;

  std::string_view operator[](std::uint32_t id) const {
    const std::size_t begin = id == 0 ? 0 : ends_[id - 1];
    return std::string_view(chars_).substr(begin, ends_[id] - begin);
  }
  std::size_t size() const { return ends_.size(); }
  void clear() {
    chars_.clear();
    ends_.clear();
    slots_.assign(slots_.size(), 0);
  }

 private:
  static std::uint32_t hash(std::string_view text);
  std::uint32_t probe(std::string_view text, std::uint32_t h) const;  // slot index
  void grow();

  std::string chars_;
  std::vector<std::size_t> ends_;
  std::vector<std::uint32_t> slots_;  // open addressing: id + 1, 0 = empty
};

// A column of strings, one per row, stored end to end.
class TextColumn {
 public:
  void push_back(std::string_view text) {
    chars_.append(text);
    ends_.push_back(chars_.size());
  }
  std::string_view operator[](std::size_t row) const {
    const std::size_t begin = row == 0 ? 0 : ends_[row - 1];
    return std::string_view(chars_).substr(begin, ends_[row] - begin);
  }
  std::size_t size() const { return ends_.size(); }
  void truncate(std::size_t rows);
  void append(const TextColumn& other);

 private:
  std::string chars_;
  std::vector<std::size_t> ends_;
};

}  // namespace conveyor::voc
