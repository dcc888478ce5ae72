"""Reference implementations the VOC parser is compared with: torchvision's parse_voc_xml on
ElementTree and on lxml, and a typed reading built from torchvision's dict."""

import json
import xml.etree.ElementTree as ET

import numpy as np
from torchvision.datasets import VOCDetection as TorchvisionVOCDetection


def torchvision_dict(data):
    """What torchvision's VOCDetection gives for a document (bytes or str)."""
    return TorchvisionVOCDetection.parse_voc_xml(ET.fromstring(data))


def lxml_dict(data):
    """torchvision's algorithm on an lxml tree (comments and PIs dropped, as ElementTree does)."""
    from lxml import etree

    parser = etree.XMLParser(
        remove_comments=True, remove_pis=True, resolve_entities=False, huge_tree=True
    )
    return TorchvisionVOCDetection.parse_voc_xml(etree.fromstring(data, parser))


def canonical(value):
    """An order-sensitive, type-sensitive text form of a dict (== ignores key order)."""
    return json.dumps(value, ensure_ascii=False)


def typed_from_dict(data, classes=None):
    """The typed fields derived from torchvision's dict (objects with a <bndbox> only)."""
    annotation = torchvision_dict(data).get("annotation") or {"object": []}
    objects = annotation["object"]
    boxes = np.array(
        [[float(o["bndbox"][k]) for k in ("xmin", "ymin", "xmax", "ymax")] for o in objects],
        dtype=np.float32,
    ).reshape(-1, 4)
    names = [o["name"] for o in objects]
    labels = [classes.index(n) + 1 if classes else -1 for n in names]
    size = annotation.get("size", {})

    def number(value):
        return -1 if value in (None, "") else int(float(value))

    return {
        "filename": annotation.get("filename", ""),
        "width": number(size.get("width")),
        "height": number(size.get("height")),
        "depth": number(size.get("depth")),
        "boxes": boxes,
        "labels": np.array(labels, dtype=np.int64),
        "names": names,
        "difficult": np.array([int(o.get("difficult") or 0) != 0 for o in objects], dtype=bool),
        "truncated": np.array([int(o.get("truncated") or 0) != 0 for o in objects], dtype=bool),
        "poses": [o.get("pose", "") for o in objects],
    }
