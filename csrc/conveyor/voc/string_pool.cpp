#include "conveyor/voc/string_pool.h"

namespace conveyor::voc {

std::uint32_t StringPool::hash(std::string_view text) {
  std::uint32_t h = 2166136261u;  // FNV-1a: the strings are short
  for (const char c : text) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return h;
}

std::uint32_t StringPool::probe(std::string_view text, std::uint32_t h) const {
  const std::uint32_t mask = static_cast<std::uint32_t>(slots_.size()) - 1;
  for (std::uint32_t slot = h & mask;; slot = (slot + 1) & mask) {
    const std::uint32_t entry = slots_[slot];
    if (entry == 0 || (*this)[entry - 1] == text) return slot;
  }
}

std::uint32_t StringPool::find(std::string_view text) const {
  if (slots_.empty()) return kAbsent;
  const std::uint32_t entry = slots_[probe(text, hash(text))];
  return entry == 0 ? kAbsent : entry - 1;
}

std::uint32_t StringPool::intern(std::string_view text) {
  if ((ends_.size() + 1) * 2 > slots_.size()) grow();  // load factor <= 1/2
  const std::uint32_t slot = probe(text, hash(text));
  if (slots_[slot] != 0) return slots_[slot] - 1;
  chars_.append(text);
  ends_.push_back(chars_.size());
  const auto id = static_cast<std::uint32_t>(ends_.size() - 1);
  slots_[slot] = id + 1;
  return id;
}

void StringPool::grow() {
  slots_.assign(slots_.empty() ? 64 : slots_.size() * 2, 0);
  for (std::uint32_t id = 0; id < ends_.size(); ++id) {
    const std::string_view text = (*this)[id];
    slots_[probe(text, hash(text))] = id + 1;
  }
}

void TextColumn::truncate(std::size_t rows) {
  if (rows >= ends_.size()) return;
  ends_.resize(rows);
  chars_.resize(rows == 0 ? 0 : ends_.back());
}

void TextColumn::append(const TextColumn& other) {
  const std::size_t shift = chars_.size();
  chars_.append(other.chars_);
  ends_.reserve(ends_.size() + other.ends_.size());
  for (const std::size_t end : other.ends_) ends_.push_back(end + shift);
}

}  // namespace conveyor::voc
