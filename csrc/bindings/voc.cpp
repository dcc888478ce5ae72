// conveyor._core VOC functions: thin wrappers over csrc/conveyor/voc. Parsing runs with the GIL
// released; Python objects are made afterwards, on the calling thread.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
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

// Tag equality for the small linear searches below: most candidates differ in length or in
// the first byte, which is cheaper to check than calling memcmp.
inline bool same_tag(std::string_view a, std::string_view b) {
  return a.size() == b.size() && (a.empty() || (a[0] == b[0] && a == b));
}

py::object steal(PyObject* object) {
  if (object == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(object);
}

py::object utf8(std::string_view text) {
  return steal(PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "strict"));
}

// Builds torchvision's VOCDetection.parse_voc_xml dict from a tree.
class DictBuilder {
 public:
  explicit DictBuilder(const XmlTree& tree) : tree_(tree) {}

  py::object build() {
    py::object value;
    if (tree_.nodes.empty() || !entry(0, value)) return steal(PyDict_New());
    py::object result = steal(PyDict_New());
    if (PyDict_SetItem(result.ptr(), key(tree_.tag(tree_.nodes[0])).ptr(), value.ptr()) != 0)
      throw py::error_already_set();
    return result;
  }

 private:
  struct Group {
    std::string_view tag;
    py::object first;
    py::object list;  // set once the tag repeats
  };

  // The value parse_voc_xml gives node `index` under its parent; false if it vanishes.
  bool entry(std::int32_t index, py::object& value) {
    const XmlNode& node = tree_.nodes[static_cast<std::size_t>(index)];
    if (node.first_child < 0) {
      if (node.text_length == 0) return false;  // textless leaf: {} in torchvision
      value = utf8(voc::python_strip(tree_.text(node)));
      return true;
    }
    const std::size_t mark = groups_.size();
    for (std::int32_t child = node.first_child; child >= 0;
         child = tree_.nodes[static_cast<std::size_t>(child)].next_sibling) {
      py::object child_value;
      if (!entry(child, child_value)) continue;
      const std::string_view tag = tree_.tag(tree_.nodes[static_cast<std::size_t>(child)]);
      Group* group = nullptr;
      for (std::size_t g = mark; g < groups_.size(); ++g)
        if (same_tag(groups_[g].tag, tag)) group = &groups_[g];
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
      Group* objects = nullptr;
      for (std::size_t g = mark; g < groups_.size(); ++g)
        if (groups_[g].tag == "object") objects = &groups_[g];
      if (objects == nullptr) {
        groups_.push_back({"object", py::object(), steal(PyList_New(0))});
      } else if (!objects->list) {
        objects->list = steal(PyList_New(0));
        if (PyList_Append(objects->list.ptr(), objects->first.ptr()) != 0)
          throw py::error_already_set();
      }
    }
    value = steal(PyDict_New());
    for (std::size_t g = mark; g < groups_.size(); ++g) {
      const Group& group = groups_[g];
      const py::object& item = group.list ? group.list : group.first;
      if (PyDict_SetItem(value.ptr(), key(group.tag).ptr(), item.ptr()) != 0)
        throw py::error_already_set();
    }
    groups_.resize(mark);
    return true;
  }

  // One interned str per distinct tag, kept across calls (VOC files share a few dozen tags;
  // the cache is bounded so that hostile input cannot grow it without limit).
  const py::object& key(std::string_view tag) {
    for (const auto& cached : keys_)
      if (same_tag(cached.first, tag)) return cached.second;
    static std::unordered_map<std::string, py::object>* interned =
        new std::unordered_map<std::string, py::object>();  // leaked: outlives the interpreter
    const std::string name(tag);
    auto found = interned->find(name);
    if (found == interned->end()) {
      py::object value = utf8(tag);
      if (interned->size() >= 4096) {
        keys_.emplace_back(tag, std::move(value));
        return keys_.back().second;
      }
      PyUnicode_InternInPlace(&value.ptr());
      found = interned->emplace(name, std::move(value)).first;
    }
    keys_.emplace_back(tag, found->second);
    return keys_.back().second;
  }

  const XmlTree& tree_;
  std::vector<Group> groups_;
  std::vector<std::pair<std::string_view, py::object>> keys_;
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
  return DictBuilder(tree).build();
}

template <class T>
py::array to_array(const std::vector<T>& values, std::vector<py::ssize_t> shape) {
  py::array_t<T> array(shape);
  if (!values.empty())
    std::memcpy(array.mutable_data(), values.data(), values.size() * sizeof(T));
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
                        to_bool_array(batch.truncated),
                        to_str_list(batch.name_ids, batch.strings),
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

py::dict parse_annotations(const py::list& documents, const ClassTable& classes,
                           int num_threads) {
  std::vector<std::string_view> views;
  views.reserve(documents.size());
  for (const auto& document : documents) {
    if (!PyBytes_Check(document.ptr())) throw py::type_error("documents must be bytes");
    views.emplace_back(PyBytes_AS_STRING(document.ptr()),
                       static_cast<std::size_t>(PyBytes_GET_SIZE(document.ptr())));
  }
  AnnotationBatch batch;
  {  // the list keeps the bytes objects alive; bytes are immutable
    py::gil_scoped_release release;
    batch = voc::parse_annotation_documents(views, classes, num_threads);
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
