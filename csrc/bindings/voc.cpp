// conveyor._core VOC functions: thin wrappers over csrc/conveyor/voc. Parsing runs with the GIL
// released; Python objects are made afterwards, on the calling thread.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bindings.h"
#include "conveyor/core/error.h"
#include "conveyor/voc/annotation_loader.h"
#include "conveyor/voc/voc_annotation.h"
#include "conveyor/voc/xml_chars.h"
#include "conveyor/voc/xml_lexer.h"
#include "conveyor/voc/xml_tree.h"

namespace py = pybind11;

namespace conveyor::bindings {
namespace {

using voc::AnnotationBatch;
using voc::ClassTable;
using voc::ParseStatus;
using voc::XmlNode;
using voc::XmlTree;

// The bytes of a bytes or str object (str as UTF-8). The object must outlive the view.
std::string_view document_bytes(const py::handle& data, bool& is_unicode) {
  is_unicode = PyUnicode_Check(data.ptr());
  if (is_unicode) {
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(data.ptr(), &size);
    if (text == nullptr) throw py::error_already_set();
    return std::string_view(text, static_cast<std::size_t>(size));
  }
  if (!PyBytes_Check(data.ptr())) throw py::type_error("expected bytes or str");
  return std::string_view(PyBytes_AS_STRING(data.ptr()),
                          static_cast<std::size_t>(PyBytes_GET_SIZE(data.ptr())));
}

[[noreturn]] void raise_parse_error(const ParseStatus& status, const std::string& source) {
  throw Error(ErrorKind::kAnnotation, status.describe(source));
}

py::object steal(PyObject* object) {
  if (object == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(object);
}

// An empty dict with room for `size` items. CPython's presized constructor saves the growth
// steps (and, for a first insertion, the allocation of its key table) that an empty dict goes
// through; it is part of the (non-limited) C API of the versions that have it.
PyObject* new_dict(std::size_t size) {
#if PY_VERSION_HEX >= 0x03080000 && PY_VERSION_HEX < 0x030D0000 && !defined(Py_LIMITED_API)
  return _PyDict_NewPresized(static_cast<Py_ssize_t>(size));
#else
  (void)size;
  return PyDict_New();
#endif
}

py::object utf8(std::string_view text) {
  return steal(PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "strict"));
}

// One interned str per tag id of a thread's reused tree (ids stay valid until the tree's tag
// pool is emptied, which changes its generation). Owned references; never released at thread
// exit (no Python calls may happen then): a bounded leak of a few dozen strs per thread.
class TagKeys {
 public:
  PyObject* get(const XmlTree& tree, std::uint32_t id) {  // borrowed reference
    if (generation_ != tree.tag_generation) {
      for (PyObject* key : keys_) Py_XDECREF(key);
      keys_.clear();
      generation_ = tree.tag_generation;
    }
    if (id >= keys_.size()) keys_.resize(tree.tags.size(), nullptr);
    PyObject*& key = keys_[id];
    if (key == nullptr) {
      const std::string_view tag = tree.tags[id];
      key = PyUnicode_DecodeUTF8(tag.data(), static_cast<Py_ssize_t>(tag.size()), "strict");
      if (key == nullptr) throw py::error_already_set();
      PyUnicode_InternInPlace(&key);
    }
    return key;
  }

 private:
  std::uint64_t generation_ = 0;
  std::vector<PyObject*> keys_;
};

// Leaf texts repeat a lot across VOC files ("0", "Unspecified", class names, coordinates):
// short ASCII ones come from a small direct-mapped cache of strs (bounded; a collision
// replaces the entry). Each slot keeps its text's bytes, so a lookup reads only the table.
// Used with the GIL held.
class TextCache {
 public:
  py::object get(std::string_view text) {
    if (text.size() > kMaxLength) return utf8(text);
    std::uint32_t h = 2166136261u;
    for (const char c : text) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    Slot& slot = slots_[h & (kSlots - 1)];
    if (slot.text != nullptr && slot.length == text.size() &&
        voc::same_bytes(slot.bytes, text.data(), text.size()))
      return py::reinterpret_borrow<py::object>(slot.text);
    py::object value = utf8(text);
    if (PyUnicode_IS_ASCII(value.ptr())) {
      Py_XDECREF(slot.text);
      slot.text = value.inc_ref().ptr();
      slot.length = static_cast<std::uint8_t>(text.size());
      std::memcpy(slot.bytes, text.data(), text.size());
    }
    return value;
  }

 private:
  static constexpr std::size_t kSlots = 2048;
  static constexpr std::size_t kMaxLength = 23;
  struct Slot {
    PyObject* text = nullptr;
    std::uint8_t length = 0;
    char bytes[kMaxLength] = {};
  };
  Slot slots_[kSlots];
};

// A run of same-tag children while building one dict.
struct Group {
  std::uint32_t tag;
  py::object first;
  py::object list;  // set once the tag repeats
};

// Builds torchvision's VOCDetection.parse_voc_xml dict from a tree.
class DictBuilder {
 public:
  DictBuilder(const XmlTree& tree, TagKeys& keys, TextCache& texts, std::vector<Group>& groups)
      : tree_(tree), keys_(keys), texts_(texts), groups_(groups) {}
  ~DictBuilder() { groups_.clear(); }  // only non-empty after an exception; the GIL is held

  py::object build() {
    py::object value;
    if (tree_.nodes.empty() || !entry(0, value)) return steal(PyDict_New());
    py::object result = steal(PyDict_New());
    if (PyDict_SetItem(result.ptr(), key(tree_.nodes[0].tag), value.ptr()) != 0)
      throw py::error_already_set();
    return result;
  }

 private:
  static constexpr std::uint32_t kObjectGroup = 0xFFFFFFFFu;  // "object" not in the pool

  PyObject* key(std::uint32_t tag) { return keys_.get(tree_, tag); }

  // The value parse_voc_xml gives node `index` under its parent; false if it vanishes.
  bool entry(std::int32_t index, py::object& value) {
    const XmlNode& node = tree_.nodes[static_cast<std::size_t>(index)];
    if (node.first_child < 0) {
      if (node.text_length == 0) return false;  // textless leaf: {} in torchvision
      value = texts_.get(voc::python_strip(tree_.text(node)));
      return true;
    }
    const std::size_t mark = groups_.size();
    for (std::int32_t child = node.first_child; child >= 0;
         child = tree_.nodes[static_cast<std::size_t>(child)].next_sibling) {
      py::object child_value;
      if (!entry(child, child_value)) continue;
      const std::uint32_t tag = tree_.nodes[static_cast<std::size_t>(child)].tag;
      Group* group = nullptr;
      for (std::size_t g = mark; g < groups_.size(); ++g)
        if (groups_[g].tag == tag) group = &groups_[g];
      if (group == nullptr) {
        groups_.push_back({tag, std::move(child_value), py::object()});
      } else if (!group->list) {
        group->list = steal(PyList_New(0));
        if (PyList_Append(group->list.ptr(), group->first.ptr()) != 0 ||
            PyList_Append(group->list.ptr(), child_value.ptr()) != 0)
          throw py::error_already_set();
      } else if (PyList_Append(group->list.ptr(), child_value.ptr()) != 0) {
        throw py::error_already_set();
      }
    }
    if (tree_.tag(node) == "annotation") {  // torchvision: "object" is always a list
      const std::uint32_t object_tag = tree_.tags.find("object");
      Group* objects = nullptr;
      for (std::size_t g = mark; g < groups_.size(); ++g)
        if (groups_[g].tag == object_tag) objects = &groups_[g];
      if (objects == nullptr) {
        groups_.push_back({kObjectGroup, py::object(), steal(PyList_New(0))});
      } else if (!objects->list) {
        objects->list = steal(PyList_New(0));
        if (PyList_Append(objects->list.ptr(), objects->first.ptr()) != 0)
          throw py::error_already_set();
      }
    }
    value = steal(new_dict(groups_.size() - mark));
    for (std::size_t g = mark; g < groups_.size(); ++g) {
      const Group& group = groups_[g];
      const py::object& item = group.list ? group.list : group.first;
      PyObject* name = group.tag == kObjectGroup ? object_key() : key(group.tag);
      if (PyDict_SetItem(value.ptr(), name, item.ptr()) != 0) throw py::error_already_set();
    }
    groups_.resize(mark);
    return true;
  }

  static PyObject* object_key() {
    static PyObject* name = PyUnicode_InternFromString("object");  // leaked: lives forever
    return name;
  }

  const XmlTree& tree_;
  TagKeys& keys_;
  TextCache& texts_;
  std::vector<Group>& groups_;  // reused between calls: empty whenever no build is running
};

py::object parse_voc_xml(const py::object& data, const py::object& source) {
  bool is_unicode = false;
  const std::string_view bytes = document_bytes(data, is_unicode);
  thread_local XmlTree tree;
  ParseStatus status;
  {
    py::gil_scoped_release release;
    voc::parse_xml_tree(bytes, is_unicode, tree, status);
  }
  if (!status.ok) raise_parse_error(status, py::str(source).cast<std::string>());
  thread_local TagKeys keys;
  thread_local std::vector<Group> groups;
  static TextCache* texts = new TextCache();  // leaked: its strs live as long as the process
  return DictBuilder(tree, keys, *texts, groups).build();
}

template <class T>
py::array to_array(const std::vector<T>& values, std::vector<py::ssize_t> shape) {
  py::array_t<T> array(shape);
  if (!values.empty()) std::memcpy(array.mutable_data(), values.data(), values.size() * sizeof(T));
  return std::move(array);
}

py::array to_bool_array(const std::vector<std::uint8_t>& values) {
  py::array_t<bool> array(static_cast<py::ssize_t>(values.size()));
  if (!values.empty()) std::memcpy(array.mutable_data(), values.data(), values.size());
  return std::move(array);
}

py::list to_str_list(const voc::TextColumn& column) {
  py::list list(column.size());
  for (std::size_t i = 0; i < column.size(); ++i)
    PyList_SET_ITEM(list.ptr(), static_cast<Py_ssize_t>(i), utf8(column[i]).release().ptr());
  return list;
}

// One str per distinct pooled string, shared by every row that has it (names and poses take a
// handful of values: the list costs a reference count per row, not a new str).
py::list to_str_list(const std::vector<std::uint32_t>& ids, const voc::StringPool& pool) {
  std::vector<py::object> made(pool.size());
  py::list list(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    py::object& text = made[ids[i]];
    if (!text) text = utf8(pool[ids[i]]);
    PyList_SET_ITEM(list.ptr(), static_cast<Py_ssize_t>(i), text.inc_ref().ptr());
  }
  return list;
}

// The arrays of a batch, as a dict of numpy arrays and str lists.
py::dict batch_to_dict(const AnnotationBatch& batch) {
  const auto files = static_cast<py::ssize_t>(batch.size());
  const auto rows = static_cast<py::ssize_t>(batch.num_objects());
  py::dict out;
  out["filenames"] = to_str_list(batch.filenames);
  out["widths"] = to_array(batch.widths, {files});
  out["heights"] = to_array(batch.heights, {files});
  out["depths"] = to_array(batch.depths, {files});
  out["segmented"] = to_bool_array(batch.segmented);
  out["offsets"] = to_array(batch.offsets, {files + 1});
  out["boxes"] = to_array(batch.boxes, {rows, 4});
  out["labels"] = to_array(batch.labels, {rows});
  out["difficult"] = to_bool_array(batch.difficult);
  out["truncated"] = to_bool_array(batch.truncated);
  out["names"] = to_str_list(batch.name_ids, batch.strings);
  out["poses"] = to_str_list(batch.pose_ids, batch.strings);
  return out;
}

py::tuple parse_annotation(const py::object& data, const ClassTable& classes,
                           const std::string& source) {
  bool is_unicode = false;
  const std::string_view bytes = document_bytes(data, is_unicode);
  thread_local AnnotationBatch batch;
  ParseStatus status;
  {
    py::gil_scoped_release release;
    batch.clear();
    voc::parse_voc_annotation(bytes, is_unicode, classes, batch, status);
  }
  if (!status.ok) raise_parse_error(status, source);
  const auto rows = static_cast<py::ssize_t>(batch.num_objects());
  return py::make_tuple(utf8(batch.filenames[0]), batch.widths[0], batch.heights[0],
                        batch.depths[0], batch.segmented[0] != 0, to_array(batch.boxes, {rows, 4}),
                        to_array(batch.labels, {rows}), to_bool_array(batch.difficult),
                        to_bool_array(batch.truncated), to_str_list(batch.name_ids, batch.strings),
                        to_str_list(batch.pose_ids, batch.strings));
}

py::dict load_annotations(const std::vector<std::string>& paths, const ClassTable& classes,
                          int num_threads) {
  AnnotationBatch batch;
  {
    py::gil_scoped_release release;
    batch = voc::load_annotation_files(paths, classes, num_threads);
  }
  return batch_to_dict(batch);
}

py::dict parse_annotations(const py::list& documents, const ClassTable& classes, int num_threads) {
  std::vector<std::string_view> views;
  std::vector<bool> is_unicode;
  views.reserve(documents.size());
  is_unicode.reserve(documents.size());
  for (const auto& document : documents) {
    bool unicode = false;
    views.push_back(document_bytes(document, unicode));
    is_unicode.push_back(unicode);
  }
  AnnotationBatch batch;
  {  // the list keeps the bytes and str objects alive; both are immutable
    py::gil_scoped_release release;
    batch = voc::parse_annotation_documents(views, classes, num_threads, &is_unicode);
  }
  return batch_to_dict(batch);
}

}  // namespace

void bind_voc(py::module_& m) {
  py::class_<ClassTable, std::shared_ptr<ClassTable>>(m, "VocClassTable")
      .def(py::init([](const py::object& classes) {
             if (classes.is_none()) return std::make_shared<ClassTable>(ClassTable::keep_all());
             return std::make_shared<ClassTable>(classes.cast<std::vector<std::string>>());
           }),
           py::arg("classes"))
      .def_property_readonly("keeps_all", &ClassTable::keeps_all);
  m.def("voc_parse_xml", &parse_voc_xml, py::arg("data"), py::arg("source"));
  m.def("voc_parse_annotation", &parse_annotation, py::arg("data"), py::arg("classes"),
        py::arg("source") = "");
  m.def("voc_load_annotations", &load_annotations, py::arg("paths"), py::arg("classes"),
        py::arg("num_threads") = 0);
  m.def("voc_parse_annotations", &parse_annotations, py::arg("documents"), py::arg("classes"),
        py::arg("num_threads") = 0);
  m.attr("voc_max_depth") = voc::kMaxDepth;
}

}  // namespace conveyor::bindings
