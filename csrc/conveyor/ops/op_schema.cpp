#include "conveyor/ops/op_schema.h"

#include <cmath>
#include <set>

#include "conveyor/core/error.h"

namespace conveyor {
namespace {

[[noreturn]] void bad(const std::string& message) {
  throw Error(ErrorKind::kInvalidArgument, message);
}

std::string form_name(const ArgValue& v) {
  switch (v.form) {
    case ArgValue::kNone:
      return "None";
    case ArgValue::kBool:
      return "a bool";
    case ArgValue::kNumber:
      return v.integral ? "an int" : "a float";
    case ArgValue::kString:
      return "a string";
    case ArgValue::kSequence:
      return "a sequence of " + std::to_string(v.numbers.size());
  }
  return "?";
}

bool to_bool(const ArgValue& v) {
  if (v.form != ArgValue::kBool) bad("must be a bool, got " + form_name(v));
  return v.numbers[0] != 0;
}

double to_number(const ArgValue& v) {
  if (v.form != ArgValue::kNumber) bad("must be a number, got " + form_name(v));
  if (!std::isfinite(v.numbers[0])) bad("must be finite");
  return v.numbers[0];
}

int to_int(const ArgValue& v) {
  if (v.form != ArgValue::kNumber || !v.integral) bad("must be an int, got " + form_name(v));
  if (std::abs(v.numbers[0]) > 1 << 30) bad("is out of range");
  return static_cast<int>(v.numbers[0]);
}

// A number or a sequence as a list (a number becomes a list of one).
std::vector<double> to_list(const ArgValue& v) {
  if (v.form == ArgValue::kNumber) return v.numbers;
  if (v.form != ArgValue::kSequence) bad("must be a number or a sequence, got " + form_name(v));
  for (double x : v.numbers)
    if (!std::isfinite(x)) bad("must hold finite numbers");
  return v.numbers;
}

std::vector<int> to_int_list(const ArgValue& v) {
  const std::vector<double> items = to_list(v);
  if (!v.integral) bad("must hold ints");
  std::vector<int> out;
  for (double x : items) {
    if (std::abs(x) > 1 << 30) bad("is out of range");
    out.push_back(static_cast<int>(x));
  }
  return out;
}

std::array<double, 2> to_pair(const ArgValue& v) {
  const std::vector<double> items = to_list(v);
  if (v.form != ArgValue::kSequence || items.size() != 2) bad("must be (min, max)");
  if (items[0] > items[1]) bad("must be (min, max) with min <= max");
  return {items[0], items[1]};
}

// size: an int (`single`) or [height, width]; [s] counts as an int, as in torchvision.
void set_size(OpSpec& op, const ArgValue& v) {
  const std::vector<int> items = to_int_list(v);
  if (items.size() != 1 && items.size() != 2) bad("must be an int or [height, width]");
  op.height = items[0];
  op.width = items.size() == 2 ? items[1] : items[0];
  op.shorter_side = items.size() == 1;
  if (op.height <= 0 || op.width <= 0) bad("must be positive");
}

void set_fixed_size(OpSpec& op, const ArgValue& v) {
  set_size(op, v);
  op.shorter_side = false;
}

// torchvision's padding order: [all], [left/right, top/bottom] or [left, top, right, bottom].
void set_padding(OpSpec& op, const ArgValue& v) {
  const std::vector<int> p = to_int_list(v);
  if (p.size() == 1)
    op.padding = {p[0], p[0], p[0], p[0]};
  else if (p.size() == 2)
    op.padding = {p[0], p[1], p[0], p[1]};
  else if (p.size() == 4)
    op.padding = {p[0], p[1], p[2], p[3]};
  else
    bad("must be an int or a sequence of 1, 2 or 4 ints");
  for (int pad : op.padding)
    if (pad < 0) bad("must be >= 0");
  op.has_padding = true;
}

uint8_t to_byte(double value) {
  if (!(value >= 0 && value <= 255)) bad("must be in [0, 255] for uint8 images");
  // torchvision casts the fill to the image dtype: truncation towards zero
  return static_cast<uint8_t>(value);
}

void set_fill(OpSpec& op, const ArgValue& v) {
  const std::vector<double> items = to_list(v);
  if (items.size() == 1)
    op.fill = {to_byte(items[0]), to_byte(items[0]), to_byte(items[0])};
  else if (items.size() == 3)
    op.fill = {to_byte(items[0]), to_byte(items[1]), to_byte(items[2])};
  else
    bad("must be a number or 3 numbers");
}

void set_mask_fill(OpSpec& op, const ArgValue& v) { op.mask_fill = to_byte(to_number(v)); }

void set_padding_mode(OpSpec& op, const ArgValue& v) {
  if (v.form != ArgValue::kString) bad("must be a string");
  if (v.text == "constant")
    op.padding_mode = PaddingMode::kConstant;
  else if (v.text == "edge")
    op.padding_mode = PaddingMode::kEdge;
  else if (v.text == "reflect")
    op.padding_mode = PaddingMode::kReflect;
  else if (v.text == "symmetric")
    op.padding_mode = PaddingMode::kSymmetric;
  else
    bad("must be one of constant, edge, reflect, symmetric");
}

void set_interpolation(OpSpec& op, const ArgValue& v) {
  if (v.form != ArgValue::kString) bad("must be a string");
  if (v.text == "bilinear")
    op.interpolation = Interpolation::kBilinear;
  else if (v.text == "nearest")
    op.interpolation = Interpolation::kNearest;
  else if (v.text == "nearest-exact")
    op.interpolation = Interpolation::kNearestExact;
  else if (v.text == "bicubic")
    op.interpolation = Interpolation::kBicubic;
  else
    bad("must be one of bilinear, nearest, nearest-exact, bicubic");
}

std::array<float, 2> to_float_pair(const ArgValue& v) {
  const std::array<double, 2> pair = to_pair(v);
  return {static_cast<float>(pair[0]), static_cast<float>(pair[1])};
}

void set_antialias(OpSpec& op, const ArgValue& v) { op.antialias = to_bool(v); }

void set_p(OpSpec& op, const ArgValue& v) {
  op.p = to_number(v);
  if (op.p < 0 || op.p > 1) bad("must be in [0, 1]");
}

std::array<float, 3> to_channels(const ArgValue& v) {
  const std::vector<double> items = to_list(v);
  if (items.size() == 1) return {float(items[0]), float(items[0]), float(items[0])};
  if (items.size() != 3) bad("must have 1 or 3 values");
  return {float(items[0]), float(items[1]), float(items[2])};
}

void set_dtype(OpSpec& op, const ArgValue& v) {
  if (v.form != ArgValue::kString) bad("must be a string");
  if (v.text == "float32" || v.text == "float")
    op.dtype = DType::kFloat32;
  else if (v.text == "float16" || v.text == "half")
    op.dtype = DType::kFloat16;
  else if (v.text == "uint8")
    op.dtype = DType::kUint8;
  else
    bad("unsupported dtype '" + v.text + "' (float32, float16 or uint8)");
}

// The photometric kinds carry their PhotometricSpec kind (what plan_photometric switches on).
void set_photometric_kind(OpSpec& op) {
  using P = PhotometricSpec;
  switch (op.kind) {
    case OpKind::kColorJitter:
      op.photometric.kind = P::kColorJitter;
      break;
    case OpKind::kPhotometricDistort:
      op.photometric.kind = P::kPhotometricDistort;
      break;
    case OpKind::kGrayscale:
      op.photometric.kind = P::kGrayscale;
      break;
    case OpKind::kRandomGrayscale:
      op.photometric.kind = P::kRandomGrayscale;
      break;
    case OpKind::kGaussianBlur:
      op.photometric.kind = P::kGaussianBlur;
      break;
    case OpKind::kRandomAutocontrast:
      op.photometric.kind = P::kRandomAutocontrast;
      break;
    case OpKind::kRandomEqualize:
      op.photometric.kind = P::kRandomEqualize;
      break;
    case OpKind::kRandomChannelPermutation:
      op.photometric.kind = P::kRandomChannelPermutation;
      break;
    default:
      break;
  }
  // RandomPhotometricDistort and RandomGrayscale/Autocontrast/Equalize have their own default p.
  if (op.kind == OpKind::kRandomGrayscale) op.photometric.p = 0.1;
}

const ArgSchema kAntialias{"antialias",
                           ArgType::kBool,
                           false,
                           "True",
                           "antialiased (wider) filter when downscaling (bilinear, bicubic)",
                           "",
                           set_antialias};
const ArgSchema kInterpolation{
    "interpolation",
    ArgType::kChoice,
    false,
    "bilinear",
    "image resampling as torchvision's InterpolationMode value (masks: nearest, or "
    "nearest-exact when that is the mode)",
    "bilinear|nearest|nearest-exact|bicubic",
    set_interpolation};
const ArgSchema kMaskInterpolation{
    "mask_interpolation",
    ArgType::kChoice,
    false,
    "nearest",
    "masks: nearest as interpolation says (torch's rule), or pil_nearest: PIL's NEAREST",
    "nearest|pil_nearest",
    [](OpSpec& op, const ArgValue& v) {
      if (v.form != ArgValue::kString) bad("must be a string");
      if (v.text != "nearest" && v.text != "pil_nearest") bad("must be nearest or pil_nearest");
      op.mask_pil_nearest = v.text == "pil_nearest";
    }};
const ArgSchema kFill{"fill", ArgType::kFill, false, "0", "image fill of padded pixels",
                      "",     set_fill};
const ArgSchema kMaskFill{"mask_fill", ArgType::kInt, false, "0", "mask fill of padded pixels",
                          "",          set_mask_fill};
const ArgSchema kPaddingMode{"padding_mode",
                             ArgType::kChoice,
                             false,
                             "constant",
                             "how padded pixels are filled (boxes move the same way)",
                             "constant|edge|reflect|symmetric",
                             set_padding_mode};
const ArgSchema kP{"p", ArgType::kFloat, false, "0.5", "probability of applying the op", "", set_p};

const ArgSchema kBrightness{"brightness",
                            ArgType::kFloatPair,
                            false,
                            "None",
                            "brightness factor range (min, max), >= 0",
                            "",
                            [](OpSpec& op, const ArgValue& v) {
                              op.photometric.brightness = to_float_pair(v);
                              if (!((*op.photometric.brightness)[0] >= 0)) bad("must be >= 0");
                            }};
const ArgSchema kContrast{"contrast",
                          ArgType::kFloatPair,
                          false,
                          "None",
                          "contrast factor range (min, max), >= 0",
                          "",
                          [](OpSpec& op, const ArgValue& v) {
                            op.photometric.contrast = to_float_pair(v);
                            if (!((*op.photometric.contrast)[0] >= 0)) bad("must be >= 0");
                          }};
const ArgSchema kSaturation{"saturation",
                            ArgType::kFloatPair,
                            false,
                            "None",
                            "saturation factor range (min, max), >= 0",
                            "",
                            [](OpSpec& op, const ArgValue& v) {
                              op.photometric.saturation = to_float_pair(v);
                              if (!((*op.photometric.saturation)[0] >= 0)) bad("must be >= 0");
                            }};
const ArgSchema kHue{"hue",
                     ArgType::kFloatPair,
                     false,
                     "None",
                     "hue shift range (min, max) within [-0.5, 0.5]",
                     "",
                     [](OpSpec& op, const ArgValue& v) {
                       op.photometric.hue = to_float_pair(v);
                       if (!((*op.photometric.hue)[0] >= -0.5f && (*op.photometric.hue)[1] <= 0.5f))
                         bad("must be within [-0.5, 0.5]");
                     }};
const ArgSchema kPhotometricP{"p",
                              ArgType::kFloat,
                              false,
                              "0.5",
                              "probability of applying the op (each distortion for "
                              "photometric_distort)",
                              "",
                              [](OpSpec& op, const ArgValue& v) {
                                set_p(op, v);
                                op.photometric.p = op.p;
                              }};

std::vector<OpSchema> build_schemas() {
  return {
      {"resize",
       OpKind::kResize,
       OpCategory::kGeometric,
       "v2.Resize: to [height, width], or the shorter side to an int (then max_size caps the "
       "longer side)",
       {{"size", ArgType::kSize, true, "", "[height, width] or the shorter side", "", set_size},
        {"max_size", ArgType::kInt, false, "None", "cap of the longer side (int size only)", "",
         [](OpSpec& op, const ArgValue& v) { op.max_size = to_int(v); }},
        kAntialias,
        kInterpolation,
        kMaskInterpolation}},
      {"random_resized_crop",
       OpKind::kRandomResizedCrop,
       OpCategory::kGeometric,
       "v2.RandomResizedCrop: a random area/aspect crop resized to size",
       {{"size", ArgType::kSize, true, "", "output [height, width] or an int", "", set_fixed_size},
        {"scale", ArgType::kFloatPair, false, "(0.08, 1.0)", "crop area fraction range", "",
         [](OpSpec& op, const ArgValue& v) {
           op.scale = to_pair(v);
           if (op.scale[0] < 0) bad("must be >= 0");
         }},
        {"ratio", ArgType::kFloatPair, false, "(3/4, 4/3)", "aspect ratio range", "",
         [](OpSpec& op, const ArgValue& v) {
           op.ratio = to_pair(v);
           if (op.ratio[0] <= 0) bad("must be > 0");
         }},
        kAntialias,
        kInterpolation}},
      {"random_crop",
       OpKind::kRandomCrop,
       OpCategory::kGeometric,
       "v2.RandomCrop: optional padding, pad_if_needed, then a random crop of size",
       {{"size", ArgType::kSize, true, "", "output [height, width] or an int", "", set_fixed_size},
        {"padding", ArgType::kPadding, false, "None", "padding before cropping", "", set_padding},
        {"pad_if_needed", ArgType::kBool, false, "False",
         "pad both sides of a too small image to size", "",
         [](OpSpec& op, const ArgValue& v) { op.pad_if_needed = to_bool(v); }},
        kFill,
        kMaskFill,
        kPaddingMode}},
      {"center_crop",
       OpKind::kCenterCrop,
       OpCategory::kGeometric,
       "v2.CenterCrop: pads with 0 where the crop is larger than the image",
       {{"size", ArgType::kSize, true, "", "output [height, width] or an int", "",
         set_fixed_size}}},
      {"pad",
       OpKind::kPad,
       OpCategory::kGeometric,
       "v2.Pad",
       {{"padding", ArgType::kPadding, true, "", "left, top, right, bottom", "", set_padding},
        kFill,
        kMaskFill,
        kPaddingMode}},
      {"pad_if_smaller",
       OpKind::kPadIfSmaller,
       OpCategory::kGeometric,
       "torchvision references' pad_if_smaller: pads right and bottom up to size",
       {{"size", ArgType::kInt, true, "", "smallest height and width", "",
         [](OpSpec& op, const ArgValue& v) { op.height = op.width = to_int(v); }},
        kFill,
        kMaskFill}},
      {"hflip", OpKind::kHorizontalFlip, OpCategory::kGeometric, "v2.RandomHorizontalFlip", {kP}},
      {"vflip", OpKind::kVerticalFlip, OpCategory::kGeometric, "v2.RandomVerticalFlip", {kP}},
      {"random_resize",
       OpKind::kRandomResize,
       OpCategory::kGeometric,
       "v2.RandomResize: the shorter side drawn uniformly from [min_size, max_size)",
       {{"min_size", ArgType::kInt, true, "", "smallest shorter side", "",
         [](OpSpec& op, const ArgValue& v) { op.min_size = to_int(v); }},
        {"max_size", ArgType::kInt, true, "", "largest shorter side, excluded", "",
         [](OpSpec& op, const ArgValue& v) { op.max_size = to_int(v); }},
        kAntialias,
        kInterpolation,
        kMaskInterpolation}},
      {"random_shortest_size",
       OpKind::kRandomShortestSize,
       OpCategory::kGeometric,
       "v2.RandomShortestSize: the shorter side one of min_size, the longer capped by max_size",
       {{"min_size", ArgType::kIntList, true, "", "shorter side choices", "",
         [](OpSpec& op, const ArgValue& v) { op.sizes = to_int_list(v); }},
        {"max_size", ArgType::kInt, false, "None", "cap of the longer side", "",
         [](OpSpec& op, const ArgValue& v) { op.max_size = to_int(v); }},
        kAntialias,
        kInterpolation}},
      {"scale_jitter",
       OpKind::kScaleJitter,
       OpCategory::kGeometric,
       "v2.ScaleJitter: resize to fit target_size times a scale drawn from scale_range",
       {{"target_size", ArgType::kSize, true, "", "(height, width) as torchvision's", "",
         [](OpSpec& op, const ArgValue& v) {
           if (v.form != ArgValue::kSequence || v.numbers.size() != 2) bad("must be (h, w)");
           set_fixed_size(op, v);
         }},
        {"scale_range", ArgType::kFloatPair, false, "(0.1, 2.0)", "scale range", "",
         [](OpSpec& op, const ArgValue& v) { op.scale_range = to_pair(v); }},
        kAntialias,
        kInterpolation}},
      {"random_zoom_out",
       OpKind::kRandomZoomOut,
       OpCategory::kGeometric,
       "v2.RandomZoomOut: the image placed at a random spot of a canvas side_range times larger",
       {kFill,
        kMaskFill,
        {"side_range", ArgType::kFloatPair, false, "(1.0, 4.0)", "canvas / image side ratio", "",
         [](OpSpec& op, const ArgValue& v) { op.side_range = to_pair(v); }},
        kP}},
      {"random_iou_crop",
       OpKind::kRandomIoUCrop,
       OpCategory::kGeometric,
       "v2.RandomIoUCrop (SSD): a crop whose IoU with some box centred in it reaches a random "
       "minimum; boxes centred outside are zeroed (then dropped)",
       {{"min_scale", ArgType::kFloat, false, "0.3", "smallest crop side fraction", "",
         [](OpSpec& op, const ArgValue& v) { op.crop_scale[0] = to_number(v); }},
        {"max_scale", ArgType::kFloat, false, "1.0", "largest crop side fraction", "",
         [](OpSpec& op, const ArgValue& v) { op.crop_scale[1] = to_number(v); }},
        {"min_aspect_ratio", ArgType::kFloat, false, "0.5", "smallest crop w / h", "",
         [](OpSpec& op, const ArgValue& v) { op.crop_aspect[0] = to_number(v); }},
        {"max_aspect_ratio", ArgType::kFloat, false, "2.0", "largest crop w / h", "",
         [](OpSpec& op, const ArgValue& v) { op.crop_aspect[1] = to_number(v); }},
        {"sampler_options", ArgType::kFloatList, false, "[0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]",
         "minimum IoU choices (>= 1: leave the sample as is)", "",
         [](OpSpec& op, const ArgValue& v) { op.sampler_options = to_list(v); }},
        {"trials", ArgType::kInt, false, "40", "crops tried per choice", "",
         [](OpSpec& op, const ArgValue& v) { op.trials = to_int(v); }}}},
      {"to_dtype",
       OpKind::kToDtype,
       OpCategory::kValue,
       "v2.ToDtype on images (scale: uint8 -> [0, 1])",
       {{"dtype", ArgType::kChoice, true, "", "output dtype", "float32|float16|uint8", set_dtype},
        {"scale", ArgType::kBool, false, "False", "scale values to the dtype's range", "",
         [](OpSpec& op, const ArgValue& v) { op.scale_values = to_bool(v); }}}},
      {"normalize",
       OpKind::kNormalize,
       OpCategory::kValue,
       "v2.Normalize: (x - mean) / std per channel, on float images",
       {{"mean", ArgType::kChannels, true, "", "per-channel mean", "",
         [](OpSpec& op, const ArgValue& v) { op.mean = to_channels(v); }},
        {"std", ArgType::kChannels, true, "", "per-channel std (non-zero)", "",
         [](OpSpec& op, const ArgValue& v) {
           op.std = to_channels(v);
           for (float s : op.std)
             if (!(s != 0)) bad("must be non-zero");
         }}}},

      {"color_jitter",
       OpKind::kColorJitter,
       OpCategory::kPhotometric,
       "v2.ColorJitter: brightness, contrast, saturation and hue factors drawn uniformly, "
       "applied in a random order",
       {kBrightness, kContrast, kSaturation, kHue}},
      {"photometric_distort",
       OpKind::kPhotometricDistort,
       OpCategory::kPhotometric,
       "v2.RandomPhotometricDistort (SSD): each distortion with probability p, contrast before "
       "or after saturation/hue, then a random channel permutation with probability p",
       {kBrightness, kContrast, kSaturation, kHue, kPhotometricP}},
      {"grayscale",
       OpKind::kGrayscale,
       OpCategory::kPhotometric,
       "v2.Grayscale(num_output_channels=3): the luma in all three channels",
       {}},
      {"random_grayscale",
       OpKind::kRandomGrayscale,
       OpCategory::kPhotometric,
       "v2.RandomGrayscale: grayscale with probability p",
       {{"p", ArgType::kFloat, false, "0.1", "probability of applying the op", "",
         kPhotometricP.apply}}},
      {"gaussian_blur",
       OpKind::kGaussianBlur,
       OpCategory::kPhotometric,
       "v2.GaussianBlur: one sigma drawn uniformly for both axes, reflect padding",
       {{"kernel_size", ArgType::kIntList, true, "", "odd kernel size: int or [x, y]", "",
         [](OpSpec& op, const ArgValue& v) {
           const std::vector<int> k = to_int_list(v);
           if (k.size() != 1 && k.size() != 2) bad("must be an int or 2 ints");
           op.photometric.kernel_size = {k[0], k.size() == 2 ? k[1] : k[0]};
           for (int size : op.photometric.kernel_size)
             if (size <= 0 || size % 2 == 0) bad("must be odd and positive");
         }},
        {"sigma", ArgType::kFloatPair, false, "(0.1, 2.0)", "sigma range (min, max), > 0", "",
         [](OpSpec& op, const ArgValue& v) {
           op.photometric.sigma = to_float_pair(v);
           if (!(op.photometric.sigma[0] > 0)) bad("must be > 0");
         }}}},
      {"random_autocontrast",
       OpKind::kRandomAutocontrast,
       OpCategory::kPhotometric,
       "v2.RandomAutocontrast: each channel stretched to [0, 255] with probability p",
       {kPhotometricP}},
      {"random_equalize",
       OpKind::kRandomEqualize,
       OpCategory::kPhotometric,
       "v2.RandomEqualize: per-channel histogram equalisation with probability p",
       {kPhotometricP}},
      {"random_channel_permutation",
       OpKind::kRandomChannelPermutation,
       OpCategory::kPhotometric,
       "v2.RandomChannelPermutation: a uniformly random channel order",
       {}},
      {"random_erasing",
       OpKind::kRandomErasing,
       OpCategory::kValue,
       "v2.RandomErasing on the final (normalised) values: with probability p, a rectangle of "
       "random area fraction and log-uniform aspect ratio gets value",
       {{"p", ArgType::kFloat, false, "0.5", "probability of erasing", "",
         [](OpSpec& op, const ArgValue& v) {
           set_p(op, v);
           op.erasing.p = op.p;
         }},
        {"scale", ArgType::kFloatPair, false, "(0.02, 0.33)", "area fraction range within [0, 1]",
         "",
         [](OpSpec& op, const ArgValue& v) {
           op.erasing.scale = to_pair(v);
           if (op.erasing.scale[0] < 0 || op.erasing.scale[1] > 1) bad("must be within [0, 1]");
         }},
        {"ratio", ArgType::kFloatPair, false, "(0.3, 3.3)", "aspect ratio range, > 0", "",
         [](OpSpec& op, const ArgValue& v) {
           op.erasing.ratio = to_pair(v);
           if (!(op.erasing.ratio[0] > 0)) bad("must be > 0");
         }},
        {"value", ArgType::kFloatList, false, "0", "erased value: 1 or 3 numbers", "",
         [](OpSpec& op, const ArgValue& v) {
           const std::vector<double> values = to_list(v);
           if (values.size() != 1 && values.size() != 3) bad("must be 1 or 3 numbers");
           op.erasing.values.assign(values.begin(), values.end());
         }},
        {"random_value", ArgType::kBool, false, "False",
         "erase with standard normal noise (value='random')", "",
         [](OpSpec& op, const ArgValue& v) { op.erasing.random_values = to_bool(v); }}}},
      {"sanitize_bounding_boxes",
       OpKind::kSanitizeBoundingBoxes,
       OpCategory::kBoxes,
       "v2.SanitizeBoundingBoxes: drops boxes smaller than min_size or min_area or outside the "
       "image, with their labels and difficult flags",
       {{"min_size", ArgType::kFloat, false, "1.0", "minimum width and height, >= 1", "",
         [](OpSpec& op, const ArgValue& v) {
           op.box_min_size = static_cast<float>(to_number(v));
           if (!(op.box_min_size >= 1)) bad("must be >= 1");
         }},
        {"min_area", ArgType::kFloat, false, "1.0", "minimum area, >= 1", "",
         [](OpSpec& op, const ArgValue& v) {
           op.box_min_area = static_cast<float>(to_number(v));
           if (!(op.box_min_area >= 1)) bad("must be >= 1");
         }}}},
      {"convert_bounding_box_format",
       OpKind::kConvertBoundingBoxFormat,
       OpCategory::kBoxes,
       "v2.ConvertBoundingBoxFormat: the output boxes in another format",
       {{"format", ArgType::kChoice, true, "", "the new format", "XYXY|XYWH|CXCYWH",
         [](OpSpec& op, const ArgValue& v) {
           if (v.form != ArgValue::kString) bad("must be a string");
           op.box_format = parse_box_format(v.text);
         }}}},
      {"clamp_bounding_boxes",
       OpKind::kClampBoundingBoxes,
       OpCategory::kBoxes,
       "v2.ClampBoundingBoxes: boxes clamped to the image",
       {}},
  };
}

}  // namespace

const char* arg_type_name(ArgType type) {
  switch (type) {
    case ArgType::kBool:
      return "bool";
    case ArgType::kInt:
      return "int";
    case ArgType::kFloat:
      return "float";
    case ArgType::kFloatPair:
      return "(float, float)";
    case ArgType::kFloatList:
      return "list[float]";
    case ArgType::kIntList:
      return "int | list[int]";
    case ArgType::kSize:
      return "int | [int, int]";
    case ArgType::kPadding:
      return "int | list[int]";
    case ArgType::kFill:
      return "number | [r, g, b]";
    case ArgType::kChannels:
      return "[float] * 1 or 3";
    case ArgType::kChoice:
      return "str";
  }
  return "?";
}

const char* op_category_name(OpCategory category) {
  switch (category) {
    case OpCategory::kGeometric:
      return "geometric";
    case OpCategory::kPhotometric:
      return "photometric";
    case OpCategory::kValue:
      return "value";
    case OpCategory::kBoxes:
      return "boxes";
  }
  return "?";
}

const std::vector<OpSchema>& op_schemas() {
  static const std::vector<OpSchema> schemas = build_schemas();
  return schemas;
}

const OpSchema& find_op_schema(const std::string& name) {
  for (const OpSchema& schema : op_schemas())
    if (name == schema.name) return schema;
  std::string known;
  for (const OpSchema& schema : op_schemas())
    known += std::string(known.empty() ? "" : ", ") + schema.name;
  bad("unknown op '" + name + "' (" + known + ")");
}

const OpSchema& op_schema(OpKind kind) {
  for (const OpSchema& schema : op_schemas())
    if (schema.kind == kind) return schema;
  throw Error(ErrorKind::kRuntime, "internal: an op kind without a schema");
}

OpSpec make_op(const std::string& name, const std::vector<std::pair<std::string, ArgValue>>& args) {
  const OpSchema& schema = find_op_schema(name);
  OpSpec op;
  op.kind = schema.kind;
  set_photometric_kind(op);
  std::set<std::string> given;
  for (const auto& [key, value] : args) {
    const ArgSchema* arg = nullptr;
    for (const ArgSchema& candidate : schema.args)
      if (key == candidate.name) arg = &candidate;
    if (!arg) {
      std::string known;
      for (const ArgSchema& candidate : schema.args)
        known += std::string(known.empty() ? "" : ", ") + candidate.name;
      bad(name + ": unknown argument '" + key + "' (" + known + ")");
    }
    if (!given.insert(key).second) bad(name + ": argument '" + key + "' given twice");
    if (value.form == ArgValue::kNone) {
      if (arg->required) bad(name + ": " + key + " must not be None");
      given.erase(key);
      continue;
    }
    try {
      arg->apply(op, value);
    } catch (const Error& error) {
      bad(name + ": " + key + " " + error.what());
    }
  }
  for (const ArgSchema& arg : schema.args)
    if (arg.required && !given.count(arg.name)) bad(name + " needs " + arg.name);
  return op;
}

}  // namespace conveyor
