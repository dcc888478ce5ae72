// Image memory shared by the codecs and the ops: a non-owning HWC view over caller memory and an
// owned, uninitialised buffer with that shape. Samples are uint8, or host-endian uint16 where
// sample_bytes == 2 (16-bit PNGs decoded unchanged).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace conveyor {

// The colour layout a decoder writes (torchvision.io.ImageReadMode's names).
enum class ColorMode {
  kUnchanged,  // as stored: 1, 2, 3 or 4 channels (palette PNG -> 1 channel of indices)
  kGray,       // 1 channel
  kGrayAlpha,  // 2 channels
  kRgb,        // 3 channels
  kRgbAlpha,   // 4 channels
};

struct ImageShape {
  int height = 0;
  int width = 0;
  int channels = 0;
  int sample_bytes = 1;  // 1 (uint8) or 2 (uint16, host-endian)

  std::size_t pixels() const { return std::size_t(height) * std::size_t(width); }
  // Bytes of one tightly packed row (the smallest valid row stride).
  std::size_t row_bytes() const {
    return std::size_t(width) * std::size_t(channels) * std::size_t(sample_bytes);
  }
  std::size_t bytes() const { return row_bytes() * std::size_t(height); }
  bool operator==(const ImageShape& o) const {
    return height == o.height && width == o.width && channels == o.channels &&
           sample_bytes == o.sample_bytes;
  }
  bool operator!=(const ImageShape& o) const { return !(*this == o); }
};

// Non-owning view of HWC interleaved pixels; row `y` starts at data + y * row_stride (bytes).
struct ImageView {
  std::uint8_t* data = nullptr;
  ImageShape shape;
  std::size_t row_stride = 0;

  std::uint8_t* row(int y) const { return data + std::size_t(y) * row_stride; }
};

// Owned pixels (shared, so a view handed to Python or a batch can keep them alive).
// The memory is NOT zero-filled: decoders overwrite every byte.
class Image {
 public:
  Image() = default;
  static Image allocate(const ImageShape& shape) {
    Image image;
    image.shape_ = shape;
    image.storage_ =
        std::shared_ptr<std::uint8_t[]>(new std::uint8_t[shape.bytes() ? shape.bytes() : 1]);
    return image;
  }
  const ImageShape& shape() const { return shape_; }
  std::uint8_t* data() const { return storage_.get(); }
  ImageView view() const { return ImageView{storage_.get(), shape_, shape_.row_bytes()}; }
  const std::shared_ptr<std::uint8_t[]>& storage() const { return storage_; }

 private:
  ImageShape shape_;
  std::shared_ptr<std::uint8_t[]> storage_;
};

// Guards against decompression bombs: Pillow's DecompressionBombError threshold
// (2 * Image.MAX_IMAGE_PIXELS = 178,956,970 pixels). 0 disables the check.
inline constexpr std::uint64_t kDefaultMaxPixels = 178956970;

}  // namespace conveyor
