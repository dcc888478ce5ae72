#include "conveyor/codecs/jpeg_region.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

extern "C" {
#include <jerror.h>
#include <jpeglib.h>
}

namespace conveyor::codecs::libjpeg {
namespace {

constexpr int kMaxScans = 500;  // TurboJPEG's TJFLAG_LIMITSCANS: progressive-scan bomb guard
constexpr int kRowsPerRead = 8;

#if JPEG_LIB_VERSION >= 70
int scaled_block_width(const jpeg_decompress_struct& cinfo) { return cinfo.min_DCT_h_scaled_size; }
#else
int scaled_block_width(const jpeg_decompress_struct& cinfo) { return cinfo.min_DCT_scaled_size; }
#endif

enum Jump { kJumpError = 1, kJumpWarning = 2 };

// libjpeg's error manager with TurboJPEG's behaviour: errors jump back, the first warning's
// text is kept, and a warning jumps back too when warnings stop the decode.
struct ErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf jump;
  bool stop_on_warning = true;
  bool warned = false;
  char message[JMSG_LENGTH_MAX] = {};
};

ErrorManager& manager(j_common_ptr cinfo) { return *reinterpret_cast<ErrorManager*>(cinfo->err); }

void on_error(j_common_ptr cinfo) {
  ErrorManager& error = manager(cinfo);
  (*cinfo->err->format_message)(cinfo, error.message);
  std::longjmp(error.jump, kJumpError);
}

void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace output
  ErrorManager& error = manager(cinfo);
  if (!error.warned) (*cinfo->err->format_message)(cinfo, error.message);
  error.warned = true;
  cinfo->err->num_warnings++;
  if (error.stop_on_warning) std::longjmp(error.jump, kJumpWarning);
}

void on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxScans) {
    ErrorManager& error = manager(cinfo);
    std::snprintf(error.message, sizeof(error.message),
                  "Progressive JPEG image has more than %d scans", kMaxScans);
    std::longjmp(error.jump, kJumpError);
  }
}

J_COLOR_SPACE color_space(PixelFormat format) {
  switch (format) {
    case PixelFormat::kGray:
      return JCS_GRAYSCALE;
    case PixelFormat::kCmyk:
      return JCS_CMYK;
    case PixelFormat::kRgb:
      break;
  }
  return JCS_EXT_RGB;
}

}  // namespace

struct RegionDecoder::State {
  jpeg_decompress_struct cinfo;
  ErrorManager error;
  jpeg_progress_mgr progress;
  std::vector<std::uint8_t> rows;  // kRowsPerRead rows of the decoded window
  JSAMPROW row_pointers[kRowsPerRead];
};

RegionDecoder::RegionDecoder() : state_(new State) {
  jpeg_decompress_struct& cinfo = state_->cinfo;
  cinfo.err = jpeg_std_error(&state_->error.pub);
  state_->error.pub.error_exit = on_error;
  state_->error.pub.emit_message = on_message;
  // jpeg_create_decompress reports only out-of-memory, through error_exit.
  if (setjmp(state_->error.jump)) {
    delete state_;
    throw std::bad_alloc();
  }
  jpeg_create_decompress(&cinfo);
  state_->progress.progress_monitor = on_progress;
  cinfo.progress = &state_->progress;
  fresh_ = true;
}

RegionDecoder::~RegionDecoder() {
  jpeg_destroy_decompress(&state_->cinfo);
  delete state_;
}

// No C++ object with a destructor is created between setjmp and a libjpeg call that may jump
// back (state_ and message_ outlive the jump; the vector is resized, never constructed here).
Status RegionDecoder::decode(const std::uint8_t* data, std::size_t size,
                             const RegionRequest& request, std::uint8_t* dst, std::size_t pitch) {
  State& state = *state_;
  jpeg_decompress_struct& cinfo = state.cinfo;
  state.error.stop_on_warning = request.stop_on_warning;
  state.error.warned = false;
  state.error.message[0] = '\0';
  state.error.pub.num_warnings = 0;
  switch (setjmp(state.error.jump)) {
    case 0:
      break;
    case kJumpWarning:
      jpeg_abort_decompress(&cinfo);
      message_ = state.error.message;
      return Status::kWarning;
    default:
      jpeg_abort_decompress(&cinfo);
      message_ = state.error.message;
      return Status::kError;
  }

  // libjpeg keeps quantization and Huffman tables across images (jpeg_abort does not clear
  // them), so a file without DQT (invalid) or DHT (Motion-JPEG: the standard tables apply)
  // would reuse an earlier image's: every image after the first gets a fresh decompressor
  // (0.3 us). jpeg_create_decompress keeps `err`; out of memory jumps to kError.
  if (!fresh_) {
    jpeg_destroy_decompress(&cinfo);
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &state.progress;
  }
  fresh_ = false;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = color_space(request.format);
  cinfo.scale_num = static_cast<unsigned>(request.scale_num);
  cinfo.scale_denom = static_cast<unsigned>(request.scale_denom);
  cinfo.dct_method = request.fast ? JDCT_IFAST : JDCT_ISLOW;
  cinfo.do_fancy_upsampling = request.fast ? FALSE : TRUE;
  jpeg_start_decompress(&cinfo);

  // A margin left and right where the window does not meet the image edge: upsampling
  // treats the window's edges as image edges, and that must stay outside the region. The
  // triangle filter of fancy h2 upsampling reaches one pixel, so 2 pixels suffice for
  // downscaled and unscaled decodes (crop_scanline then widens the window to an iMCU
  // boundary); DCT upscales get a whole iMCU. Rows need none: jpeg_skip_scanlines keeps the
  // context rows that vertical upsampling reads. test_jpeg checks every layout and scale
  // against the full decode.
  // Progressive files whose AC scans are incomplete are block-smoothed: each block is estimated
  // from the DC values of the blocks up to 2 away, and crop_scanline's window edge counts as
  // the image edge there too. Two blocks of the most subsampled component more keep that
  // outside the region (found by fuzz_decode.h: crops of such files differed from the full
  // decode).
  const int smoothing_margin = cinfo.progressive_mode && cinfo.do_block_smoothing
                                   ? 2 * cinfo.max_h_samp_factor * scaled_block_width(cinfo)
                                   : 0;
  const int margin_x = smoothing_margin + (request.scale_num > request.scale_denom
                                               ? cinfo.max_h_samp_factor * scaled_block_width(cinfo)
                                               : 2);
  const int full_width = static_cast<int>(cinfo.output_width);
  JDIMENSION window_x = static_cast<JDIMENSION>(std::max(0, request.x - margin_x));
  JDIMENSION window_width =
      static_cast<JDIMENSION>(std::min(full_width, request.x + request.width + margin_x)) -
      window_x;
  if (window_width < cinfo.output_width) jpeg_crop_scanline(&cinfo, &window_x, &window_width);
  const std::size_t channels = static_cast<std::size_t>(cinfo.output_components);
  // Scratch rows start 1 byte past a 64-byte boundary: libjpeg-turbo's AVX2 colour
  // conversion writes 32-byte-aligned rows with non-temporal stores, which would send the
  // rows to memory just before they are copied out of the cache.
  const std::size_t row_stride = (std::size_t(cinfo.output_width) * channels + 64) / 64 * 64;
  if (state.rows.size() < row_stride * kRowsPerRead + 128)
    state.rows.resize(row_stride * kRowsPerRead + 128);
  std::uint8_t* const rows =
      state.rows.data() + (64 - reinterpret_cast<std::uintptr_t>(state.rows.data()) % 64) + 1;
  for (int i = 0; i < kRowsPerRead; ++i) state.row_pointers[i] = rows + row_stride * i;

  if (request.y > 0) jpeg_skip_scanlines(&cinfo, static_cast<JDIMENSION>(request.y));
  const JDIMENSION end_row = static_cast<JDIMENSION>(request.y + request.height);
  const std::size_t skip_bytes = (static_cast<std::size_t>(request.x) - window_x) * channels;
  const std::size_t copy_bytes = static_cast<std::size_t>(request.width) * channels;
  while (cinfo.output_scanline < end_row) {
    const JDIMENSION first = cinfo.output_scanline;
    const JDIMENSION read = jpeg_read_scanlines(
        &cinfo, state.row_pointers, std::min<JDIMENSION>(kRowsPerRead, end_row - first));
    if (read == 0) {  // cannot happen with a memory source (it pads missing data); never spin
      std::snprintf(state.error.message, sizeof(state.error.message), "decoder returned no rows");
      std::longjmp(state.error.jump, kJumpError);
    }
    for (JDIMENSION i = 0; i < read; ++i) {
      const std::size_t y = first + i - static_cast<JDIMENSION>(request.y);
      std::memcpy(dst + pitch * y, state.row_pointers[i] + skip_bytes, copy_bytes);
    }
  }
  // One verdict per file, whatever the crop: the rows below the region are decoded too (in
  // the cropped window only) and finish_decompress reads to the end-of-image marker, so
  // corruption or truncation after the region is reported as by a full decode. (Skipping them
  // with jpeg_skip_scanlines would save their IDCT, but libjpeg-turbo 2.1 can loop forever
  // reading the last row after a skip.) A multi-scan file was read whole by start_decompress.
  while (cinfo.output_scanline < cinfo.output_height) {
    if (jpeg_read_scanlines(&cinfo, state.row_pointers, kRowsPerRead) == 0) {
      std::snprintf(state.error.message, sizeof(state.error.message), "decoder returned no rows");
      std::longjmp(state.error.jump, kJumpError);
    }
  }
  jpeg_finish_decompress(&cinfo);
  if (state.error.warned) {
    message_ = state.error.message;
    return Status::kWarning;
  }
  return Status::kOk;
}

}  // namespace conveyor::codecs::libjpeg
