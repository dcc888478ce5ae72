// The one description of every native op: its name, what it acts on, its arguments (type,
// default, meaning) and how each argument lands in an OpSpec. Bindings build ops only through
// make_op (one generic constructor driven by this table), Python reads the table for its
// documentation, and compile_pipeline/plan_geometry consume the typed OpSpec. Adding an op:
// see "How to add an op" in csrc/conveyor/README.md.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "conveyor/ops/op_spec.h"

namespace conveyor {

// An argument value as given by a caller, before the schema gives it a type.
struct ArgValue {
  enum Form { kNone, kBool, kNumber, kString, kSequence } form = kNone;
  std::vector<double> numbers;  // kBool / kNumber: one value; kSequence: the items
  bool integral = true;         // every number is a whole number given as an int
  std::string text;             // kString

  static ArgValue none() { return {}; }
  static ArgValue boolean(bool value) { return {kBool, {value ? 1.0 : 0.0}, true, {}}; }
  static ArgValue integer(long long value) { return {kNumber, {double(value)}, true, {}}; }
  static ArgValue real(double value) { return {kNumber, {value}, false, {}}; }
  static ArgValue string(std::string value) { return {kString, {}, true, std::move(value)}; }
  static ArgValue sequence(std::vector<double> values, bool integral) {
    return {kSequence, std::move(values), integral, {}};
  }
};

// What an argument accepts (for documentation and for the checks make_op applies first).
enum class ArgType {
  kBool,
  kInt,        // an int, or None where the argument is optional ("none" default)
  kFloat,      // a number
  kFloatPair,  // (min, max)
  kFloatList,  // any number of numbers
  kIntList,    // an int or a sequence of ints
  kSize,       // an int or [height, width]
  kPadding,    // an int or 1, 2 or 4 ints (left, top, right, bottom order as torchvision)
  kFill,       // None, a number or 3 numbers in [0, 255]
  kChannels,   // 1 or 3 numbers
  kChoice,     // one of `choices`
};

const char* arg_type_name(ArgType type);

struct ArgSchema {
  const char* name;
  ArgType type;
  bool required;
  const char* default_value;  // as Python spells it; "" when required
  const char* doc;
  const char* choices;  // kChoice: "a|b|c"
  // Stores a checked value into the op; throws Error(kInvalidArgument) with the reason.
  void (*apply)(OpSpec& op, const ArgValue& value);
};

enum class OpCategory {
  kGeometric,    // moves pixels, boxes and masks together (uint8 images)
  kPhotometric,  // changes image values only (uint8 images)
  kValue,        // fused into the final write (dtype, normalisation), or on its result
  kBoxes,        // the output boxes only (after the geometric ops)
};

const char* op_category_name(OpCategory category);

struct OpSchema {
  const char* name;
  OpKind kind;
  OpCategory category;
  const char* doc;
  std::vector<ArgSchema> args;
};

// Every op, in documentation order.
const std::vector<OpSchema>& op_schemas();

// Throws Error(kInvalidArgument) listing the known ops.
const OpSchema& find_op_schema(const std::string& name);
const OpSchema& op_schema(OpKind kind);

// An op from its name and arguments: unknown names, missing required arguments and values of
// the wrong type or range throw Error(kInvalidArgument) naming the op and the argument. An
// argument given as None keeps its default.
OpSpec make_op(const std::string& name, const std::vector<std::pair<std::string, ArgValue>>& args);

}  // namespace conveyor
