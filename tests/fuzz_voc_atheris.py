"""atheris harness: conveyor.voc.parse_voc_xml against ElementTree + torchvision on mutated
VOC documents. Any difference (a document one accepts and the other refuses, or different
dicts), or any exception other than AnnotationError, is a finding.

Run: python tests/fuzz_voc_atheris.py -max_total_time=60 [corpus_dir]
"""

import collections
import random
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import atheris
import numpy  # noqa: F401  (imported before instrumentation: instrumenting numpy is slow)

with atheris.instrument_imports():
    from conveyor import voc
    from conveyor.errors import AnnotationError


def torchvision_parse_voc_xml(node):
    """torchvision.datasets.VOCDetection.parse_voc_xml, verbatim (importing torchvision would
    cost the harness most of its few seconds)."""
    voc_dict = {}
    children = list(node)
    if children:
        def_dic = collections.defaultdict(list)
        for dc in map(torchvision_parse_voc_xml, children):
            for ind, v in dc.items():
                def_dic[ind].append(v)
        if node.tag == "annotation":
            def_dic["object"] = [def_dic["object"]]
        voc_dict = {node.tag: {ind: v[0] if len(v) == 1 else v for ind, v in def_dic.items()}}
    if node.text:
        text = node.text.strip()
        if not children:
            voc_dict[node.tag] = text
    return voc_dict


def one_input(data: bytes) -> None:
    if b"<!DOCTYPE" in data or b"<!doctype" in data:  # entity declarations: refused by design
        return
    try:
        expected = torchvision_parse_voc_xml(ET.fromstring(data))
    except ET.ParseError:
        expected = None
    except (RecursionError, ValueError, LookupError):  # torchvision's own limits / codecs
        return
    try:
        got = voc.parse_voc_xml(data)
    except AnnotationError:
        got = None
    if expected is None and got is not None and data.lstrip(b"\xef\xbb\xbf").startswith(b"<?xml"):
        return  # encodings that ElementTree supports through Python codecs and we refuse
    if got != expected:
        if expected is not None and got is None:
            # Known, documented refusals: encodings other than UTF-8/ASCII/latin-1/cp1252.
            if b"encoding" in data[:200]:
                return
        raise AssertionError(
            f"difference on {data!r}: conveyor {got!r} vs ElementTree {expected!r}"
        )


SEEDS = [
    b'<?xml version="1.0"?>\n<annotation><folder>VOC2007</folder><filename>000001.jpg</filename>'
    b"<size><width>353</width><height>500</height><depth>3</depth></size><object><name>dog"
    b"</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult><bndbox><xmin>48"
    b"</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox></object></annotation>",
    b"<a x='1' xmlns:p='u'><p:b>&amp;&#65;<![CDATA[<c>]]><!-- d --></p:b><?pi?>\r\n</a>",
    b"\xef\xbb\xbf<annotation><name> \xc3\xa9 </name><e/><f></f></annotation>",
]


def mutate(data: bytes, max_size: int, seed: int) -> bytes:
    """Mutations start from the VOC-like seeds as often as from the current input: the native
    parser gives libFuzzer no coverage signal, so the corpus alone would collapse to one input."""
    rng = random.Random(seed)
    if rng.random() < 0.5 or not data:
        data = rng.choice(SEEDS)
    for _ in range(rng.randint(1, 4)):
        data = atheris.Mutate(data, max_size)
    return data


def main(argv) -> None:
    for seed in SEEDS:  # the seeds themselves must agree
        one_input(seed)
    corpora = [arg for arg in argv[1:] if not arg.startswith("-")]
    for corpus in filter(lambda p: Path(p).is_dir(), corpora):  # start from VOC-like inputs
        for i, seed in enumerate(SEEDS):
            Path(corpus, f"seed{i}.xml").write_bytes(seed)
    atheris.Setup(argv, one_input, custom_mutator=mutate)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
