// The VOC XML reader on its own: well-formed documents, every class of malformed input, the
// security rules, and the typed reader's values and errors.
#include <string>

#include "check.h"
#include "conveyor/core/error.h"
#include "conveyor/voc/annotation_loader.h"
#include "conveyor/voc/voc_annotation.h"
#include "conveyor/voc/xml_lexer.h"
#include "conveyor/voc/xml_tree.h"

using namespace conveyor::voc;

namespace {

bool well_formed(const std::string& document, std::string* message = nullptr) {
  XmlTree tree;
  ParseStatus status;
  const bool ok = parse_xml_tree(document, false, tree, status);
  if (message) *message = status.message;
  return ok;
}

const char* kVoc =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"
    "<annotation>\r\n"
    "  <filename>000001.jpg</filename>\r\n"
    "  <size><width>353</width><height>500</height><depth>3</depth></size>\r\n"
    "  <segmented>0</segmented>\r\n"
    "  <object><name>dog</name><pose>Left</pose><truncated>1</truncated>\r\n"
    "    <difficult>0</difficult>\r\n"
    "    <bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195.5</xmax><ymax>371</ymax></bndbox>\r\n"
    "  </object>\r\n"
    "  <object><name> person </name><difficult/><bndbox><xmin>8</xmin><ymin>12</ymin>"
    "<xmax>352</xmax><ymax>498</ymax></bndbox><part><name>head</name><bndbox><xmin>1</xmin>"
    "<ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></part></object>\r\n"
    "</annotation>\r\n";

}  // namespace

TEST_CASE("tree keeps leaf text, decodes references and normalizes line ends") {
  XmlTree tree;
  ParseStatus status;
  CHECK(parse_xml_tree("<a><b>x &amp; &#65;&#x42;\r\ny</b><c/><d>t<!--c-->u<![CDATA[<v>]]></d></a>",
                       false, tree, status));
  CHECK(tree.nodes.size() == 4);
  CHECK(tree.tag(tree.nodes[0]) == "a");
  CHECK(tree.text(tree.nodes[1]) == "x & AB\ny");
  CHECK(tree.nodes[2].text_length == 0);
  CHECK(tree.text(tree.nodes[3]) == "tu<v>");
}

TEST_CASE("namespaces resolve to {uri}local") {
  XmlTree tree;
  ParseStatus status;
  CHECK(parse_xml_tree("<a xmlns='u' xmlns:p='v'><p:b>1</p:b><c xmlns=''/></a>", false, tree,
                       status));
  CHECK(tree.tag(tree.nodes[0]) == "{u}a");
  CHECK(tree.tag(tree.nodes[1]) == "{v}b");
  CHECK(tree.tag(tree.nodes[2]) == "c");
}

TEST_CASE("malformed documents fail with a position") {
  const char* bad[] = {
      "",
      "   ",
      "<a>",
      "<a></b>",
      "<a><b></a></b>",
      "<a>&foo;</a>",
      "<a>&#0;</a>",
      "<a>&#xD800;</a>",
      "<a>&#;</a>",
      "<a>&amp</a>",
      "text<a/>",
      "<a/>text",
      "<a/><b/>",
      "<a b='1' b='2'/>",
      "<a b=1/>",
      "<a b='<'/>",
      "<a>]]></a>",
      "<a><!-- -- --></a>",
      "<a>\x01</a>",
      "<a>\xff</a>",
      "<a>\xc0\x80</a>",
      "<a>\xed\xa0\x80</a>",
      "<a><?xml x?></a>",
      " <?xml version='1.0'?><a/>",
      "<a><![CDATA[x</a>",
      "<p:a/>",
      "<1a/>",
      "<a b='1'c='2'/>",
      "<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
      "<!DOCTYPE a [%x;]><a/>",
      "<a></a ",
      "<?xml version='1:0'?><a/>",
      "<?xml encoding='utf-8'?><a/>",
      "<a",
      "<!DOCTYPE a><!DOCTYPE a><a/>",
      "<a><!DOCTYPE a></a>",
  };
  for (const char* document : bad) {
    XmlTree tree;
    ParseStatus status;
    const bool ok = parse_xml_tree(document, false, tree, status);
    if (ok) std::fprintf(stderr, "accepted: %s\n", document);
    CHECK(!ok);
    CHECK(status.line >= 1 && status.column >= 1 && !status.message.empty());
  }
}

TEST_CASE("well-formed edge cases are accepted") {
  const char* good[] = {
      "\xEF\xBB\xBF<a/>",
      "<?xml version=\"1.0\"?><a/>",
      "<!-- c --><a/><!-- d -->\n",
      "<?pi data?><a><?pi?></a>",
      "<!DOCTYPE a SYSTEM 'a.dtd'><a/>",
      "<!DOCTYPE a [<!ELEMENT a (#PCDATA)><!ATTLIST a b CDATA '>'>]><a/>",
      "<a b = \"x&lt;&#10;\" c='\"'/>",
      "<\xc3\xa9l\xc3\xa9ment>\xe4\xb8\xad</\xc3\xa9l\xc3\xa9ment>",
      "<a>]</a>",
      "<a>]]</a>",
      "<a>></a>",
      "<a\n/>",
      "<a></a >",
  };
  for (const char* document : good) {
    std::string message;
    const bool ok = well_formed(document, &message);
    if (!ok) std::fprintf(stderr, "rejected: %s (%s)\n", document, message.c_str());
    CHECK(ok);
  }
}

TEST_CASE("entity declarations are refused and depth is bounded") {
  std::string message;
  CHECK(
      !well_formed("<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]>"
                   "<lolz>&lol2;</lolz>",
                   &message));
  CHECK(message.find("entity") != std::string::npos);
  CHECK(!well_formed("<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>&e;</a>"));
  std::string deep;
  for (std::size_t i = 0; i < kMaxDepth + 1; ++i) deep += "<a>";
  CHECK(!well_formed(deep, &message));
  CHECK(message.find("deeper") != std::string::npos);
  std::string ok_deep, closing;
  for (std::size_t i = 0; i < kMaxDepth; ++i) ok_deep += "<a>", closing += "</a>";
  CHECK(well_formed(ok_deep + closing));
}

TEST_CASE("positions are 1-based lines and character columns") {
  XmlTree tree;
  ParseStatus status;
  CHECK(!parse_xml_tree("<a>\n  <b>\xc3\xa9</c>\n</a>", false, tree, status));
  CHECK(status.line == 2);
  CHECK(status.column == 7);
  CHECK(status.describe("x.xml").rfind("x.xml:2:7: mismatched tag", 0) == 0);
}

TEST_CASE("latin-1 and windows-1252 documents are transcoded") {
  XmlTree tree;
  ParseStatus status;
  CHECK(parse_xml_tree("<?xml version='1.0' encoding='ISO-8859-1'?><a>\xe9</a>", false, tree,
                       status));
  CHECK(tree.text(tree.nodes[0]) == "\xc3\xa9");
  CHECK(parse_xml_tree("<?xml version='1.0' encoding='cp1252'?><a>\x80</a>", false, tree, status));
  CHECK(tree.text(tree.nodes[0]) == "\xe2\x82\xac");
  CHECK(!parse_xml_tree("<?xml version='1.0' encoding='us-ascii'?><a>\xc3\xa9</a>", false, tree,
                        status));
  CHECK(!parse_xml_tree("<?xml version='1.0' encoding='gbk'?><a/>", false, tree, status));
  CHECK(!parse_xml_tree("\xff\xfe<\0a\0/\0>\0", false, tree, status));
}

TEST_CASE("typed reader extracts VOC fields") {
  const ClassTable classes({"cat", "dog", "person"});
  AnnotationBatch batch;
  ParseStatus status;
  CHECK(parse_voc_annotation(kVoc, false, classes, batch, status));
  CHECK(batch.size() == 1);
  CHECK(batch.filenames[0] == "000001.jpg");
  CHECK(batch.widths[0] == 353 && batch.heights[0] == 500 && batch.depths[0] == 3);
  CHECK(batch.num_objects() == 2);
  CHECK(batch.offsets[1] == 2);
  CHECK(batch.labels[0] == 2 && batch.labels[1] == 3);
  CHECK(batch.name(1) == "person");
  CHECK(batch.boxes[2] == 195.5f && batch.boxes[4] == 8.0f);
  CHECK(batch.truncated[0] == 1 && batch.difficult[1] == 0);
  CHECK(batch.pose(0) == "Left" && batch.pose(1).empty());
}

TEST_CASE("typed reader rejects unusable annotations and keeps the batch intact") {
  const ClassTable classes({"dog"});
  const char* bad[] = {
      "<root/>",
      "<annotation><object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
      "</bndbox></object></annotation>",
      "<annotation><object><name>dog</name></object></annotation>",
      "<annotation><object><name>dog</name><bndbox><xmin>1</xmin></bndbox></object></annotation>",
      "<annotation><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax>"
      "<ymax>2</ymax></bndbox></object></annotation>",
      "<annotation><object><name>dog</name><bndbox><xmin>x</xmin><ymin>1</ymin><xmax>2</xmax>"
      "<ymax>2</ymax></bndbox></object></annotation>",
      "<annotation><size><width>-3</width></size></annotation>",
      "<annotation><size><width>1</width><width>2</width></size></annotation>",
      "<annotation><object><name>dog</name><difficult>maybe</difficult></object></annotation>",
      "<annotation><filename><b/></filename></annotation>",
  };
  AnnotationBatch batch;
  ParseStatus status;
  CHECK(parse_voc_annotation(kVoc, false, ClassTable::keep_all(), batch, status));
  for (const char* document : bad) {
    const bool ok = parse_voc_annotation(document, false, classes, batch, status);
    if (ok) std::fprintf(stderr, "accepted: %s\n", document);
    CHECK(!ok);
    CHECK(batch.size() == 1 && batch.num_objects() == 2 && batch.offsets.size() == 2);
  }
}

TEST_CASE("documents in memory parse in parallel, in order, first error reported") {
  std::vector<std::string> storage;
  for (int i = 0; i < 300; ++i)
    storage.push_back("<annotation><filename>" + std::to_string(i) +
                      "</filename><object><name>dog</name><bndbox><xmin>" + std::to_string(i) +
                      "</xmin><ymin>0</ymin><xmax>1</xmax><ymax>1</ymax></bndbox></object>"
                      "</annotation>");
  std::vector<std::string_view> views(storage.begin(), storage.end());
  const ClassTable classes({"dog"});
  const AnnotationBatch batch = parse_annotation_documents(views, classes, 3);
  CHECK(batch.size() == 300 && batch.num_objects() == 300);
  bool ordered = true;
  for (int i = 0; i < 300; ++i)
    ordered = ordered && batch.filenames[i] == std::to_string(i) && batch.boxes[i * 4] == i;
  CHECK(ordered);
  storage[250] = "<annotation>";
  storage[100] = "<annotation></x>";
  views.assign(storage.begin(), storage.end());
  try {
    parse_annotation_documents(views, classes, 3);
    CHECK(false);
  } catch (const conveyor::Error& error) {
    CHECK(error.kind() == conveyor::ErrorKind::kAnnotation);
    CHECK(std::string(error.what()).rfind("document 100:1:13:", 0) == 0);
  }
  CHECK_THROWS_KIND(load_annotation_files({"/nonexistent/file.xml"}, classes, 1),
                    conveyor::ErrorKind::kNotFound);
}

TEST_MAIN()
