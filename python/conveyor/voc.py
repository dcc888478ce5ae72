"""PASCAL VOC annotations: a strict, fast native XML reader with torchvision-compatible output.

Three levels, all backed by the native parser in ``csrc/conveyor/voc`` (GIL released):

* :func:`parse_voc_xml` gives exactly the nested dict of torchvision's
  ``VOCDetection.parse_voc_xml(ET.fromstring(data))``.
* :func:`parse_annotation` gives one typed :class:`Annotation` (numpy arrays).
* :func:`load_annotations` reads and parses many files in native threads into one
  struct-of-arrays :class:`AnnotationSet` (sample ``i`` owns object rows
  ``offsets[i]:offsets[i + 1]``).

Malformed documents raise :class:`conveyor.errors.AnnotationError` naming the file (when known)
and the ``line:column`` of the problem. Entities are never expanded: a DOCTYPE declaring
entities is rejected, so neither "billion laughs" nor external entities can do harm.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from typing import Any, Iterable, Optional, Union

import numpy as np

from conveyor.errors import AnnotationError

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
"""The 20 VOC classes in label order: ``VOC_CLASSES[k - 1]`` has label ``k``; 0 is background."""

XmlInput = Union[bytes, bytearray, memoryview, str]
PathLike = Union[str, "os.PathLike[str]"]


class Annotation:
    """One parsed VOC annotation.

    Attributes:
        filename: the ``<filename>`` text ("" when absent).
        width: ``<size><width>``, -1 when absent or empty.
        height: ``<size><height>``, -1 when absent or empty.
        depth: ``<size><depth>``, -1 when absent or empty.
        segmented: ``<segmented>`` is a non-zero integer.
        boxes: float32 [N, 4] ``xmin, ymin, xmax, ymax`` as written (floats allowed).
        labels: int64 [N], 1-based index into ``classes`` (0 is background); -1 when parsed
            with ``classes=None``.
        difficult: bool [N].
        truncated: bool [N].
        names: the N class names, whitespace-stripped.
        poses: the N ``<pose>`` texts ("" when absent).
    """

    __slots__ = (
        "filename",
        "width",
        "height",
        "depth",
        "segmented",
        "boxes",
        "labels",
        "difficult",
        "truncated",
        "names",
        "poses",
    )

    def __init__(
        self,
        filename: str,
        width: int,
        height: int,
        depth: int,
        segmented: bool,
        boxes: np.ndarray,
        labels: np.ndarray,
        difficult: np.ndarray,
        truncated: np.ndarray,
        names: list,
        poses: list,
    ):
        self.filename = filename
        self.width = width
        self.height = height
        self.depth = depth
        self.segmented = segmented
        self.boxes = boxes
        self.labels = labels
        self.difficult = difficult
        self.truncated = truncated
        self.names = names
        self.poses = poses

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (
            f"Annotation(filename={self.filename!r}, size={self.width}x{self.height}x"
            f"{self.depth}, objects={self.names!r})"
        )


class _DocumentNames(Sequence):
    """The "paths" of in-memory documents, ``"document <i>"``, made only when asked for."""

    __slots__ = ("_count",)

    def __init__(self, count: int):
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        index = operator.index(index)
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(f"document index {index} out of range for {self._count} documents")
        return f"document {index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, (list, tuple, _DocumentNames)):
            return len(other) == self._count and list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"[{', '.join(repr(name) for name in self[:3])}{', ...' if self._count > 3 else ''}]"


class AnnotationSet:
    """Many annotations as one struct of arrays (what :func:`load_annotations` returns).

    Attributes:
        paths: the N annotation file paths, in input order ("document <i>" names for
            :func:`parse_annotations`).
        filenames: the N ``<filename>`` texts.
        widths: int64 [N] (-1 where the file declares no width).
        heights: int64 [N] (-1 where the file declares no height).
        depths: int64 [N] (-1 where the file declares no depth).
        segmented: bool [N].
        offsets: int64 [N + 1]; sample ``i`` owns object rows ``offsets[i]:offsets[i + 1]``.
        boxes: float32 [M, 4] ``xmin, ymin, xmax, ymax``.
        labels: int64 [M], 1-based into ``classes`` (-1 everywhere when ``classes`` is None).
        difficult: bool [M].
        truncated: bool [M].
        names: the M object class names.
        poses: the M object poses.
        classes: the class names ``labels`` index into (None when loaded with classes=None).
    """

    def __init__(
        self,
        *,
        paths,
        filenames,
        widths,
        heights,
        depths,
        segmented,
        offsets,
        boxes,
        labels,
        difficult,
        truncated,
        names,
        poses,
        classes,
    ):
        # Lists straight from the native module are used as they are (no one else holds them).
        self.paths = paths if isinstance(paths, _DocumentNames) else list(paths)
        self.filenames = filenames if type(filenames) is list else list(filenames)
        self.widths = np.asarray(widths, dtype=np.int64)
        self.heights = np.asarray(heights, dtype=np.int64)
        self.depths = np.asarray(depths, dtype=np.int64)
        self.segmented = np.asarray(segmented, dtype=bool)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.difficult = np.asarray(difficult, dtype=bool)
        self.truncated = np.asarray(truncated, dtype=bool)
        self.names = names if type(names) is list else list(names)
        self.poses = poses if type(poses) is list else list(poses)
        self.classes = None if classes is None else tuple(classes)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_objects(self) -> int:
        """M, the total number of objects."""
        return int(self.offsets[-1])

    def rows(self, index: int) -> slice:
        """The object rows of sample ``index``."""
        return slice(int(self.offsets[index]), int(self.offsets[index + 1]))

    def __getitem__(self, index: int) -> Annotation:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"annotation index {index} out of range for {len(self)} files")
        rows = self.rows(index)
        return Annotation(
            filename=self.filenames[index],
            width=int(self.widths[index]),
            height=int(self.heights[index]),
            depth=int(self.depths[index]),
            segmented=bool(self.segmented[index]),
            boxes=self.boxes[rows],
            labels=self.labels[rows],
            difficult=self.difficult[rows],
            truncated=self.truncated[rows],
            names=self.names[rows],
            poses=self.poses[rows],
        )

    def __repr__(self) -> str:
        return f"AnnotationSet({len(self)} files, {self.num_objects} objects)"


_CORE = None


def _core():
    """The native module (imported on first use, then cached: this sits on the per-call path)."""
    global _CORE
    if _CORE is None:
        from conveyor import _core as core

        _CORE = core
    return _CORE


_CLASS_TABLES: dict = {}


def _class_table(classes: Optional[Sequence[str]]):
    """The native class table for ``classes`` (cached: building one costs more than a parse)."""
    key = None if classes is None else tuple(classes)
    table = _CLASS_TABLES.get(key)
    if table is None:
        if key is not None:
            if isinstance(classes, str):
                raise TypeError("classes must be a sequence of class names, not a str")
            for name in key:
                if not isinstance(name, str):
                    raise TypeError(f"class names must be str, got {type(name).__name__}")
            if len(set(key)) != len(key):
                raise ValueError(f"classes contains duplicate names: {list(key)}")
        table = _core().VocClassTable(None if key is None else list(key))
        if len(_CLASS_TABLES) < 64:
            _CLASS_TABLES[key] = table
    return table


def _as_document(data: XmlInput) -> Union[bytes, str]:
    if type(data) is bytes or isinstance(data, (bytes, str)):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected the XML document as bytes or str, got {type(data).__name__}")


def parse_voc_xml(data: XmlInput, *, source: str = "") -> dict[str, Any]:
    """Parses a VOC annotation into torchvision's nested dict.

    The result equals ``torchvision.datasets.VOCDetection.parse_voc_xml(ET.fromstring(data))``
    for every well-formed document: repeated tags become lists, ``object`` under
    ``annotation`` is always a list, textless leaves vanish, whitespace-only leaves give ``""``,
    attributes and mixed-content text are ignored, and all values are ``str``.

    Args:
        data: the document as bytes (its declared encoding is honoured: UTF-8, US-ASCII,
            ISO-8859-1 or windows-1252) or as str.
        source: a file name to put in error messages.

    Returns:
        The nested dict, e.g. ``{"annotation": {"filename": ..., "object": [...]}}``.

    Raises:
        AnnotationError: the document is not well-formed XML, declares entities, or nests
            deeper than 1000 elements.
    """
    return _core().voc_parse_xml(_as_document(data), source)


def parse_annotation(
    data: XmlInput, classes: Optional[Sequence[str]] = VOC_CLASSES, *, source: str = ""
) -> Annotation:
    """Parses a VOC annotation into typed arrays.

    Args:
        data: the document as bytes or str.
        classes: class names; an object's label is its 1-based index here (0 is background).
            An object of another class raises. ``None`` keeps every name (labels are then -1).
        source: a file name to put in error messages.

    Returns:
        The :class:`Annotation`.

    Raises:
        AnnotationError: malformed XML, a root other than ``<annotation>``, an object without
            ``<name>`` or a complete ``<bndbox>``, a value that is not a number, a repeated
            field, or an unknown class.
    """
    (
        filename,
        width,
        height,
        depth,
        segmented,
        boxes,
        labels,
        difficult,
        truncated,
        names,
        poses,
    ) = _core().voc_parse_annotation(_as_document(data), _class_table(classes), source)
    return Annotation(
        filename, width, height, depth, segmented, boxes, labels, difficult, truncated, names, poses
    )


def _resolve_threads(num_threads: Optional[int]) -> int:
    if num_threads is None:
        return 0
    if not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
    return num_threads


def load_annotations(
    paths: Iterable[PathLike],
    classes: Optional[Sequence[str]] = VOC_CLASSES,
    num_threads: Optional[int] = None,
) -> AnnotationSet:
    """Reads and parses many annotation files in parallel native threads.

    Args:
        paths: the XML files, in the order the result keeps.
        classes: as for :func:`parse_annotation`.
        num_threads: worker threads; ``None`` uses every core (fewer for small inputs).

    Returns:
        One :class:`AnnotationSet` (struct of arrays, sample ``i`` owns rows
        ``offsets[i]:offsets[i + 1]``).

    Raises:
        FileNotFoundError: a file does not exist.
        OSError: a file cannot be read.
        AnnotationError: a file is malformed (the first bad one in input order, named with its
            line and column).
    """
    paths = [os.fspath(path) for path in paths]
    arrays = _core().voc_load_annotations(
        paths, _class_table(classes), _resolve_threads(num_threads)
    )
    return AnnotationSet(paths=paths, classes=None if classes is None else tuple(classes), **arrays)


def parse_annotations(
    documents: Sequence[XmlInput],
    classes: Optional[Sequence[str]] = VOC_CLASSES,
    num_threads: Optional[int] = None,
) -> AnnotationSet:
    """Parses many in-memory annotations in parallel native threads.

    Args:
        documents: the XML documents as bytes or str (as for :func:`parse_annotation`).
        classes: as for :func:`parse_annotation`.
        num_threads: worker threads; ``None`` uses every core (fewer for small inputs).

    Returns:
        One :class:`AnnotationSet`; its ``paths`` are ``"document <i>"`` (a read-only sequence
        made on demand).

    Raises:
        AnnotationError: a document is malformed (the first bad one, by index).
    """
    documents = documents if type(documents) is list else list(documents)
    table, threads = _class_table(classes), _resolve_threads(num_threads)
    try:  # bytes and str go to the native side as they are
        arrays = _core().voc_parse_annotations(documents, table, threads)
    except TypeError:  # bytearray / memoryview (copied), or a clear error for anything else
        documents = [_as_document(document) for document in documents]
        arrays = _core().voc_parse_annotations(documents, table, threads)
    return AnnotationSet(
        paths=_DocumentNames(len(documents)),
        classes=None if classes is None else tuple(classes),
        **arrays,
    )


__all__ = [
    "VOC_CLASSES",
    "Annotation",
    "AnnotationSet",
    "parse_voc_xml",
    "parse_annotation",
    "load_annotations",
    "parse_annotations",
    "AnnotationError",
]
