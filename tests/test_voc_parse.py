"""conveyor.voc against ElementTree/torchvision and lxml: real files, generated documents,
malformed and hostile input, typed parsing and threaded loading."""

import random
import re
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from voc_reference import canonical, lxml_dict, torchvision_dict, typed_from_dict

from conveyor import voc
from conveyor.errors import AnnotationError

POSITION = re.compile(r":\d+:\d+: |line \d+, column \d+: ")


def real_xml_files(realvoc):
    files = sorted(realvoc.rglob("*.xml"))
    assert len(files) >= 80
    return files


# ---------------------------------------------------------------- compat dict, real files


def test_every_real_file_matches_torchvision_and_lxml(realvoc):
    for path in real_xml_files(realvoc):
        data = path.read_bytes()
        expected = torchvision_dict(data)
        got = voc.parse_voc_xml(data, source=str(path))
        assert canonical(got) == canonical(expected), path
        assert canonical(lxml_dict(data)) == canonical(expected), path
        # The same document given as str.
        assert canonical(voc.parse_voc_xml(data.decode("utf-8-sig"))) == canonical(expected)


def test_compat_dict_shape_on_a_voc_file():
    data = (
        b"<annotation><folder>VOC2007</folder><size><width>353</width></size>"
        b"<object><name>dog</name><bndbox><xmin>48</xmin></bndbox></object>"
        b"<object><name>person</name><difficult/></object><empty></empty><blank>  </blank>"
        b"</annotation>"
    )
    assert voc.parse_voc_xml(data) == {
        "annotation": {
            "folder": "VOC2007",
            "size": {"width": "353"},
            "object": [{"name": "dog", "bndbox": {"xmin": "48"}}, {"name": "person"}],
            "blank": "",
        }
    }
    assert voc.parse_voc_xml(b"<annotation/>") == {}
    assert voc.parse_voc_xml(b"<annotation><a/></annotation>") == {"annotation": {"object": []}}
    one = voc.parse_voc_xml(b"<annotation><object><name>x</name></object></annotation>")
    assert one == {"annotation": {"object": [{"name": "x"}]}}


# ---------------------------------------------------------------- generated documents

TAGS = [
    "annotation",
    "object",
    "name",
    "bndbox",
    "xmin",
    "size",
    "part",
    "a",
    "b",
    "x-y",
    "_u",
    "d.e",
    "\u00e9t\u00e9",
    "\u4e2d",
]
TEXT_ALPHABET = st.sampled_from(
    list("ab xyz019.-_\t\n\r<>&'\"]")
    + ["\u00e9", "\u00a0", "\u3000", "\u2003", "\u4e2d", "\U0001f600", "\u0085", "\u2028"]
)


def escape_text(text, draw):
    """Writes text with a random mix of literal characters, entities and character references
    (one draw: a seed, so that generation stays fast)."""
    choose = random.Random(draw(st.integers(0, 2**32))).choice
    out = []
    for ch in text:
        if ch == "<":
            out.append(choose(["&lt;", "&#60;", "&#x3c;"]))
        elif ch == "&":
            out.append(choose(["&amp;", "&#38;"]))
        elif ch == ">":
            out.append(choose([">", "&gt;"]))
        elif ch == "\r":
            out.append(choose(["\r", "&#13;", "&#xD;"]))
        elif ch == "]":
            out.append("&#93;")
        elif ch in "'\"":
            out.append(choose([ch, "&apos;" if ch == "'" else "&quot;"]))
        else:
            out.append(choose([ch] * 9 + [f"&#{ord(ch)};"]))
    return "".join(out)


TEXT = st.text(TEXT_ALPHABET, max_size=8)


@st.composite
def text_piece(draw):
    text = draw(TEXT)
    kind = draw(st.integers(0, 9))
    if kind == 0 and "]]>" not in text and "\r" not in text:
        return f"<![CDATA[{text}]]>"
    if kind == 1:
        return "<!--" + draw(st.sampled_from(["", " c ", "x-y", "\u00e9"])) + "-->"
    if kind == 2:
        return "<?pi " + draw(st.sampled_from(["", "data", "a?b"])) + "?>"
    return escape_text(text, draw)


@st.composite
def attributes(draw):
    names = draw(st.lists(st.sampled_from(["id", "verified", "x", "a-b"]), unique=True, max_size=3))
    parts = []
    for name in names:
        quote = draw(st.sampled_from(["'", '"']))
        value = escape_text(draw(st.text(st.sampled_from(list("ab1 <&>")), max_size=4)), draw)
        parts.append(
            f"{draw(st.sampled_from([' ', chr(10), chr(9) + ' ']))}{name}={quote}{value}{quote}"
        )
    return "".join(parts)


@st.composite
def element(draw, depth=0):
    tag = draw(TAG)
    attrs = draw(ATTRIBUTES)
    if depth >= 4:
        children = []
    else:
        children = draw(st.lists(ELEMENTS[depth + 1], max_size=4 if depth < 2 else 2))
    if not children and draw(st.integers(0, 5)) == 0:
        return f"<{tag}{attrs}/>"
    body = []
    for child in children:
        body.append(draw(TEXT_PIECE) if draw(st.booleans()) else "")
        body.append(child)
    body.append("".join(draw(st.lists(TEXT_PIECE, max_size=3))))
    space = draw(st.sampled_from(["", " ", "\n"]))
    return f"<{tag}{attrs}>{''.join(body)}</{tag}{space}>"


# Strategies are built once: building them per draw dominates generation time.
TAG = st.sampled_from(TAGS)
ATTRIBUTES = attributes()
TEXT_PIECE = text_piece()
ELEMENTS = [None] * 5
for _depth in reversed(range(5)):
    ELEMENTS[_depth] = element(_depth)


@st.composite
def document(draw):
    prolog = draw(
        st.sampled_from(
            [
                "",
                '<?xml version="1.0"?>\n',
                "<?xml version='1.0' encoding='UTF-8'?>",
                '<?xml version="1.0" encoding="utf-8" standalone="yes"?>\r\n',
                "\ufeff",
                "<!-- header -->\n",
                "<!DOCTYPE annotation>\n",
                '<!DOCTYPE annotation SYSTEM "voc.dtd">',
                "<!DOCTYPE a [<!ELEMENT a ANY>]>",
            ]
        )
    )
    root = draw(ELEMENTS[0])
    epilog = draw(st.sampled_from(["", "\n", "\r\n<!-- end -->", "<?done?>  "]))
    return prolog + root + epilog


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document())
def test_generated_documents_match_elementtree_and_lxml(text):
    data = text.encode("utf-8")
    expected = canonical(torchvision_dict(data))
    assert canonical(voc.parse_voc_xml(data)) == expected
    assert canonical(voc.parse_voc_xml(text)) == expected
    assert canonical(lxml_dict(data)) == expected


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            list("<>/=&;#x'\" ab!-?[]CDATA\r\n\u00e9")
            + ["<a>", "</a>", "<b/>", "&amp;", "<!--", "-->", "]]>"]
        ),
        max_size=40,
    ).map("".join)
)
def test_arbitrary_markup_is_accepted_exactly_when_elementtree_accepts_it(text):
    assume("<!DOCTYPE" not in text)
    try:
        expected = canonical(torchvision_dict(text.encode("utf-8")))
    except ET.ParseError:
        expected = None
    try:
        got = canonical(voc.parse_voc_xml(text.encode("utf-8")))
    except AnnotationError as error:
        assert POSITION.search(str(error)), str(error)
        got = None
    assert got == expected, text


# ---------------------------------------------------------------- malformed and hostile input

MALFORMED = {
    "empty": b"",
    "only whitespace": b"  \n",
    "truncated": b"<annotation><object><name>dog</name>",
    "truncated in a tag": b"<annotation><obj",
    "mismatched tags": b"<annotation><size></object></annotation>",
    "crossed tags": b"<a><b></a></b>",
    "unknown entity": b"<a>&nbsp;</a>",
    "reference without semicolon": b"<a>&amp</a>",
    "bad character reference": b"<a>&#0;</a>",
    "surrogate character reference": b"<a>&#xD800;</a>",
    "character reference out of range": b"<a>&#x110000;</a>",
    "empty character reference": b"<a>&#;</a>",
    "invalid utf-8": b"<a>\xff\xfe</a>",
    "overlong utf-8": b"<a>\xc0\xaf</a>",
    "encoded surrogate": b"<a>\xed\xa0\x80</a>",
    "control character": b"<a>\x01</a>",
    "text before the root": b"junk<a/>",
    "text after the root": b"<a/>junk",
    "two roots": b"<a/><b/>",
    "duplicate attribute": b'<a x="1" x="2"/>',
    "unquoted attribute": b"<a x=1/>",
    "lt in attribute": b'<a x="<"/>',
    "missing space between attributes": b"<a x='1'y='2'/>",
    "cdata end in text": b"<a>]]></a>",
    "double dash in comment": b"<a><!-- x -- y --></a>",
    "xml declaration not first": b" <?xml version='1.0'?><a/>",
    "xml declaration inside": b"<a><?xml version='1.0'?></a>",
    "bad version": b"<?xml version='1:0'?><a/>",
    "declaration without version": b"<?xml encoding='utf-8'?><a/>",
    "declaration attributes out of order": b"<?xml version='1.0' standalone='yes' "
    b"encoding='utf-8'?><a/>",
    "unterminated cdata": b"<a><![CDATA[x</a>",
    "unbound prefix": b"<p:a/>",
    "name starting with a digit": b"<1a/>",
    "doctype inside the root": b"<a><!DOCTYPE a></a>",
    "end tag not closed": b"<a></a",
    "invalid utf-8 in the declaration": b'<?xml version="1.\xb7\xb70"?><a/>',  # found by fuzzing
    "invalid utf-8 in a name": b"<a\xff/>",
    "processing instruction target with a colon": b"<a><?p:i?></a>",
    "namespace uri with a brace": b"<a xmlns:p='x}u'/>",
    "empty namespace prefix declaration": b'<a xmlns:="u"/>',
    "duplicate expanded attribute": b'<a xmlns:b="u" xmlns:c="u" b:x="1" c:x="2"/>',
    "malformed attribute qname": b'<a xmlns:b="u" b:c:d="1"/>',
    "invalid utf-8 in an end tag": b"<a></a\xc3>",
}


@pytest.mark.parametrize(
    "uri",
    [b"u\t\tv", b"u\nv", b"u\r\nv", b"u\rv", b"u&#9;v", b"u&#10;&#13;v"],
    ids=["tabs", "newline", "crlf", "cr", "tab reference", "newline references"],
)
def test_namespace_uri_white_space_is_normalised_as_elementtree_does(uri):
    # Literal white space in an attribute value becomes a space; references are kept (XML 3.3.3).
    data = b"<a xmlns:p='" + uri + b"'><p:b>x</p:b></a>"
    assert voc.parse_voc_xml(data) == torchvision_dict(data)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_documents_raise_annotation_error_with_position(name):
    data = MALFORMED[name]
    with pytest.raises(ET.ParseError):  # ElementTree rejects them too
        ET.fromstring(data)
    with pytest.raises(AnnotationError) as info:
        voc.parse_voc_xml(data, source="bad.xml")
    assert re.match(r"bad\.xml:\d+:\d+: \S", str(info.value)), str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(AnnotationError):
        voc.parse_annotation(data, classes=None)


def test_error_position_is_line_and_column():
    data = "<annotation>\n  <size>\n    <width>5</widht>\n".encode()
    with pytest.raises(
        AnnotationError,
        match=r"^x\.xml:3:13: mismatched tag: expected "
        r"</width>, found </widht>",
    ):
        voc.parse_voc_xml(data, source="x.xml")
    with pytest.raises(AnnotationError, match=r"^line 3, column 13: mismatched"):
        voc.parse_voc_xml(data)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<annotation><filename>&lol9;</filename></annotation>"""


def test_billion_laughs_is_refused_quickly():
    start = time.perf_counter()
    with pytest.raises(AnnotationError, match=r"line 3, column 2: DOCTYPE declares an entity"):
        voc.parse_voc_xml(BILLION_LAUGHS)
    with pytest.raises(AnnotationError, match="entity"):
        voc.parse_annotation(BILLION_LAUGHS)
    assert time.perf_counter() - start < 1.0


def test_external_entities_are_never_fetched(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    for data in [
        f'<!DOCTYPE a [<!ENTITY e SYSTEM "file://{secret}">]><a>&e;</a>'.encode(),
        f'<!DOCTYPE a [<!ENTITY % p SYSTEM "file://{secret}"> %p;]><a/>'.encode(),
        b"<!DOCTYPE a [%p;]><a/>",
        b'<!DOCTYPE a [<!ENTITY e SYSTEM "http://127.0.0.1:9/x">]><a>&e;</a>',
    ]:
        with pytest.raises(AnnotationError) as info:
            voc.parse_voc_xml(data)
        assert "TOP SECRET" not in str(info.value)
    # An external DTD is allowed but never read: its entities stay undefined.
    with pytest.raises(AnnotationError, match="undefined entity &e;"):
        voc.parse_voc_xml(f'<!DOCTYPE a SYSTEM "file://{secret}"><a>&e;</a>'.encode())


def test_nesting_depth_is_bounded_without_recursion():
    limit = voc._core().voc_max_depth
    ok = b"<a>" * limit + b"x" + b"</a>" * limit
    assert voc.parse_voc_xml(ok)
    with pytest.raises(AnnotationError, match="nested deeper than"):
        voc.parse_voc_xml(b"<a>" * (limit + 1) + b"</a>" * (limit + 1))
    with pytest.raises(AnnotationError):
        voc.parse_voc_xml(b"<a>" * 1_000_000)


def test_encodings():
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><a>caf\u00e9</a>'.encode("latin-1")
    assert voc.parse_voc_xml(latin) == torchvision_dict(latin) == {"a": "caf\u00e9"}
    cp1252 = '<?xml version="1.0" encoding="windows-1252"?><a>\u20ac</a>'.encode("cp1252")
    assert voc.parse_voc_xml(cp1252) == torchvision_dict(cp1252)
    with pytest.raises(AnnotationError, match="UTF-16"):
        voc.parse_voc_xml("<a>x</a>".encode("utf-16"))
    with pytest.raises(AnnotationError, match="unsupported encoding 'gbk'"):
        voc.parse_voc_xml(b'<?xml version="1.0" encoding="gbk"?><a/>')
    with pytest.raises(AnnotationError, match="US-ASCII"):
        voc.parse_voc_xml('<?xml version="1.0" encoding="us-ascii"?><a>\u00e9</a>'.encode())
    # A str ignores its declared encoding, as ElementTree does.
    text = '<?xml version="1.0" encoding="latin-1"?><a>\u00e9</a>'
    assert voc.parse_voc_xml(text) == torchvision_dict(text) == {"a": "\u00e9"}


def test_bad_argument_types():
    with pytest.raises(TypeError):
        voc.parse_voc_xml(12)
    assert voc.parse_voc_xml(bytearray(b"<a>1</a>")) == {"a": "1"}
    assert voc.parse_voc_xml(memoryview(b"<a>1</a>")) == {"a": "1"}


# ---------------------------------------------------------------- typed parsing

VOC_DOC = b"""<annotation>
  <filename>000032.jpg</filename>
  <size><width>500</width><height>281</height><depth>3</depth></size>
  <segmented>1</segmented>
  <object><name>aeroplane</name><pose>Frontal</pose><truncated>0</truncated>
    <difficult>0</difficult>
    <bndbox><xmin>104</xmin><ymin>78</ymin><xmax>375.5</xmax><ymax>183</ymax></bndbox></object>
  <object><name>person</name><pose/><truncated>1</truncated><difficult>1</difficult>
    <bndbox><ymin>229</ymin><xmin>9</xmin><xmax>18</xmax><ymax>259</ymax></bndbox>
    <part><name>head</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax>
    </bndbox></part></object>
</annotation>"""


def test_parse_annotation_fields():
    annotation = voc.parse_annotation(VOC_DOC)
    assert annotation.filename == "000032.jpg"
    assert (annotation.width, annotation.height, annotation.depth) == (500, 281, 3)
    assert annotation.segmented is True
    assert annotation.boxes.dtype == np.float32 and annotation.boxes.shape == (2, 4)
    np.testing.assert_array_equal(annotation.boxes, [[104, 78, 375.5, 183], [9, 229, 18, 259]])
    assert annotation.labels.dtype == np.int64
    assert annotation.labels.tolist() == [1, 15]  # aeroplane, person: 1-based, 0 = background
    assert [voc.VOC_CLASSES[k - 1] for k in annotation.labels] == annotation.names
    assert annotation.difficult.tolist() == [False, True]
    assert annotation.truncated.tolist() == [False, True]
    assert annotation.poses == ["Frontal", ""]
    assert len(annotation) == 2


def test_unknown_class_raises_unless_classes_is_none():
    data = VOC_DOC.replace(b"<name>person</name>", b"<name>unicorn</name>")
    with pytest.raises(
        AnnotationError,
        match=r"f\.xml:\d+:\d+: unknown class 'unicorn' "
        r"\(object 2\); pass classes=None",
    ):
        voc.parse_annotation(data, source="f.xml")
    kept = voc.parse_annotation(data, classes=None)
    assert kept.names == ["aeroplane", "unicorn"] and kept.labels.tolist() == [-1, -1]
    custom = voc.parse_annotation(data, classes=["unicorn", "aeroplane"])
    assert custom.labels.tolist() == [2, 1]
    with pytest.raises(ValueError, match="duplicate"):
        voc.parse_annotation(data, classes=["a", "a"])


@pytest.mark.parametrize(
    "change, message",
    [
        ((b"<xmin>104</xmin>", b"<xmin>1o4</xmin>"), "invalid <xmin> '1o4' in object 1"),
        ((b"<xmin>104</xmin>", b""), "has no <xmin>"),
        ((b"<name>aeroplane</name>", b""), "object without a <name>"),
        ((b"<width>500</width>", b"<width>wide</width>"), "invalid <width> 'wide'"),
        ((b"<width>500</width>", b"<width>5</width><width>6</width>"), "repeated <width>"),
        ((b"<difficult>1</difficult>", b"<difficult>yes</difficult>"), "invalid <difficult>"),
        ((b"<annotation>", b"<annotations>"), "root element is <annotations>"),
    ],
)
def test_unusable_annotations_raise(change, message):
    data = VOC_DOC.replace(*change)
    if change[0] == b"<annotation>":
        data = data.replace(b"</annotation>", b"</annotations>")
    with pytest.raises(AnnotationError, match=re.escape(message)):
        voc.parse_annotation(data)


def test_typed_parsing_matches_torchvision_dict_on_real_files(realvoc):
    checked = 0
    for path in real_xml_files(realvoc):
        data = path.read_bytes()
        objects = torchvision_dict(data).get("annotation", {}).get("object", [])
        if not isinstance(objects, list) or any("bndbox" not in o for o in objects):
            with pytest.raises(AnnotationError, match=re.escape(str(path)) + r":\d+:\d+: .*bndbox"):
                voc.parse_annotation(data, classes=None, source=str(path))
            continue
        expected = typed_from_dict(data)
        got = voc.parse_annotation(data, classes=None)
        for key, value in expected.items():
            actual = getattr(got, key)
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(actual, value, err_msg=f"{path} {key}")
                assert actual.dtype == value.dtype
            else:
                assert actual == value, (path, key)
        checked += 1
    assert checked >= 70


@st.composite
def voc_annotation(draw):
    """VOC documents mostly in the plain layout the native fast path reads, some with what only
    the full reader handles (CRLF, comments, references, CDATA, attributes, non-ASCII, a
    declaration, an empty element), all valid for the typed reader."""
    special = draw(st.booleans())

    def text(value):
        style = draw(
            st.sampled_from(["plain", "padded", "comment", "reference", "cdata"])
            if special
            else st.just(draw(st.sampled_from(["plain", "padded"])))
        )
        if style == "padded":
            return f" \n\t{value}  "
        if style == "comment" and value:
            return f"{value[:1]}<!-- c -->{value[1:]}"
        if style == "reference" and value:
            return f"&#{ord(value[0])};{value[1:]}"
        if style == "cdata":
            return f"<![CDATA[{value}]]>"
        return value

    def element(tag, value):
        return f"<{tag}>{text(value)}</{tag}>"

    names = (
        ["dog", "person", "pottedplant", "chat\u00e9", "a-b.c_d"]
        if special
        else ["dog", "person", "pottedplant", "a-b.c_d"]
    )
    newline = draw(st.sampled_from(["\n", "\r\n", ""] if special else ["\n", ""]))
    indent = draw(st.sampled_from(["\t", "  ", ""]))
    objects = []
    for _ in range(draw(st.integers(0, 4))):
        box = [
            draw(st.sampled_from(["1", "17", "250.5", "+3", "0.25", "1e2", "499"]))
            for _ in range(4)
        ]
        fields = [
            element("name", draw(st.sampled_from(names))),
            "<bndbox>"
            + "".join(element(k, v) for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
            + "</bndbox>",
        ]
        if draw(st.booleans()):
            fields.append(element("pose", draw(st.sampled_from(["Left", "Unspecified", ""]))))
        if draw(st.booleans()):
            fields.append(element("difficult", draw(st.sampled_from(["0", "1", ""]))))
        if draw(st.booleans()):
            fields.append(element("truncated", draw(st.sampled_from(["0", "1"]))))
        if draw(st.booleans()):
            fields.append("<part><name>head</name><bndbox><xmin>1</xmin></bndbox></part>")
        fields = draw(st.permutations(fields))
        objects.append("<object>" + newline.join(indent * 2 + f for f in fields) + "</object>")
    parts = [
        element("folder", "VOC2012"),
        element("filename", "2008_000008.jpg"),
        "<size>"
        + element("width", "500")
        + element("height", "375")
        + (element("depth", "3") if draw(st.booleans()) else "")
        + "</size>",
        element("segmented", draw(st.sampled_from(["0", "1"]))),
    ] + objects
    parts = draw(st.permutations(parts))
    root_open = "<annotation>"
    if special and draw(st.booleans()):
        root_open = draw(st.sampled_from(['<annotation verified="yes">', "<annotation >"]))
    document = (
        root_open
        + newline
        + newline.join(indent + p for p in parts)
        + newline
        + "</annotation>"
        + newline
    )
    if special and draw(st.booleans()):
        document = '<?xml version="1.0"?>' + newline + document
    return document.encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(voc_annotation())
def test_typed_parsing_matches_torchvision_dict_on_generated_documents(data):
    """The typed readers (the fast path for plain documents and the full one) give the fields
    torchvision's dict holds."""
    expected = typed_from_dict(data)
    got = voc.parse_annotation(data, classes=None)
    batch = voc.parse_annotations([data, data], classes=None)
    for key, value in expected.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(got, key), value, err_msg=key)
            np.testing.assert_array_equal(getattr(batch[1], key), value, err_msg=key)
        else:
            assert getattr(got, key) == value, key
            assert getattr(batch[1], key) == value, key


def test_load_annotations_struct_of_arrays(realvoc, tmp_path):
    files = []
    for path in real_xml_files(realvoc):
        try:
            voc.parse_annotation(path.read_bytes(), classes=None)
        except AnnotationError:
            continue
        files.append(path)
    one = voc.load_annotations(files, classes=None, num_threads=1)
    many = voc.load_annotations([str(f) for f in files] * 3, classes=None, num_threads=3)
    assert len(one) == len(files) and len(many) == 3 * len(files)
    assert one.offsets.dtype == np.int64 and one.offsets.shape == (len(files) + 1,)
    assert one.boxes.dtype == np.float32 and one.boxes.shape == (one.num_objects, 4)
    assert one.labels.dtype == np.int64 and one.difficult.dtype == bool
    assert one.widths.dtype == np.int64 and one.heights.shape == (len(files),)
    assert len(one.names) == len(one.poses) == one.num_objects
    np.testing.assert_array_equal(many.boxes, np.concatenate([one.boxes] * 3))
    for i, path in enumerate(files):
        single = voc.parse_annotation(path.read_bytes(), classes=None)
        item = one[i]
        np.testing.assert_array_equal(item.boxes, single.boxes)
        assert item.names == single.names and item.filename == single.filename
        assert (item.width, item.height, item.depth) == (single.width, single.height, single.depth)
        assert many.paths[i + len(files)] == str(path)
    in_memory = voc.parse_annotations([f.read_bytes() for f in files], classes=None)
    np.testing.assert_array_equal(in_memory.offsets, one.offsets)


def test_load_annotations_errors_name_the_file(tmp_path):
    good = tmp_path / "good.xml"
    good.write_bytes(VOC_DOC)
    bad = tmp_path / "bad.xml"
    bad.write_bytes(VOC_DOC.replace(b"</size>", b"</sise>"))
    with pytest.raises(AnnotationError, match=re.escape(str(bad)) + r":3:63: mismatched tag"):
        voc.load_annotations([good] * 100 + [bad] + [good] * 100)
    with pytest.raises(FileNotFoundError, match="missing.xml"):
        voc.load_annotations([good, tmp_path / "missing.xml"])
    with pytest.raises(OSError, match="not a regular file"):
        voc.load_annotations([tmp_path])
    with pytest.raises(ValueError, match="num_threads"):
        voc.load_annotations([good], num_threads=0)
    empty = voc.load_annotations([])
    assert len(empty) == 0 and empty.offsets.tolist() == [0] and empty.boxes.shape == (0, 4)
