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
  else
    bad("must be bilinear (other modes do not run natively yet)");
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

const ArgSchema kAntialias{
    "antialias", ArgType::kBool, false, "True", "antialiased (wider) filter when downscaling",
    "",          set_antialias};
const ArgSchema kInterpolation{
    "interpolation", ArgType::kChoice, false, "bilinear", "image resampling (masks: nearest)",
    "bilinear",      set_interpolation};
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
        kInterpolation}},
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
      {"hflip", OpKind::kHorizontalFlip, OpCategory::kGeometric, "v2.RandomHorizontalFlip", {kP}},
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
