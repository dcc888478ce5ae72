"""Reading the annotations of a user's VOC-format folder: every file parsed once by the native
reader, bad files reported one by one (not the first only), class names mapped to labels, and
what annotation tools write repaired or dropped, always counted (never silently).

Shared by :class:`conveyor.datasets.VOCFolder` and ``VOCDetection(target_format="boxes")``, so
that ``dataset[i]`` and conveyor's native loader path read the very same arrays.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from conveyor import voc as _voc
from conveyor.errors import AnnotationError

UNKNOWN_CLASSES = ("raise", "skip")


@dataclass
class AnnotationReport:
    """What reading a folder's annotations found and did, for the user to see.

    Attributes:
        bad_files: sample index -> the error of its unreadable or malformed XML (the sample
            raises it when loaded; ``DataLoader(on_error="skip")`` skips it).
        unknown_names: objects of classes outside an explicit class list, by name (skipped).
        clamped_boxes: boxes past the image's edge, clamped to it.
        dropped_boxes: ``(file, [xmin, ymin, xmax, ymax], why)`` of inverted, zero-area or
            non-finite boxes, left out of the targets.
        size_from_image: files whose ``<size>`` is missing or 0x0 (the image's size is used).
        size_mismatch: ``(file, declared (w, h), image (w, h))`` where they differ (the
            image's size is used).
    """

    bad_files: dict = field(default_factory=dict)
    unknown_names: Counter = field(default_factory=Counter)
    clamped_boxes: int = 0
    dropped_boxes: list = field(default_factory=list)
    size_from_image: list = field(default_factory=list)
    size_mismatch: list = field(default_factory=list)

    def lines(self) -> list:
        """One line per kind of finding (empty when there is nothing to say)."""
        out = []
        if self.bad_files:
            first = next(iter(self.bad_files.values()))
            out.append(f"{len(self.bad_files)} unreadable or malformed annotation(s), e.g. {first}")
        if self.unknown_names:
            names = ", ".join(f"{name!r} x{count}" for name, count in self.unknown_names.items())
            out.append(
                f"{sum(self.unknown_names.values())} object(s) of unknown classes skipped: {names}"
            )
        if self.dropped_boxes:
            path, box, why = self.dropped_boxes[0]
            out.append(
                f"{len(self.dropped_boxes)} box(es) dropped, e.g. {path}: {why} box "
                f"{[round(float(v), 2) for v in box]}"
            )
        if self.clamped_boxes:
            out.append(f"{self.clamped_boxes} box(es) past the image edge clamped to it")
        if self.size_from_image:
            out.append(
                f"{len(self.size_from_image)} file(s) declare no or a 0x0 <size> (the image's is "
                f"used), e.g. {self.size_from_image[0]}"
            )
        if self.size_mismatch:
            path, declared, real = self.size_mismatch[0]
            out.append(
                f"{len(self.size_mismatch)} file(s) declare a size other than the image's (the "
                f"image's is used), e.g. {path}: {declared[0]}x{declared[1]} vs "
                f"{real[0]}x{real[1]}"
            )
        return out


def _threads(num_threads: Optional[int]) -> int:
    return num_threads or max(1, os.cpu_count() or 1)


def _parse_error(path: str) -> Optional[BaseException]:
    try:
        with open(path, "rb") as file:
            _voc.parse_annotation(file.read(), None, source=path)
    except (AnnotationError, OSError, ValueError) as error:
        return error
    return None


def _empty_set(paths: list) -> _voc.AnnotationSet:
    n = len(paths)
    return _voc.AnnotationSet(
        paths=paths,
        filenames=[""] * n,
        widths=np.full(n, -1),
        heights=np.full(n, -1),
        depths=np.full(n, -1),
        segmented=np.zeros(n, bool),
        offsets=np.zeros(n + 1, np.int64),
        boxes=np.zeros((0, 4), np.float32),
        labels=np.zeros(0, np.int64),
        difficult=np.zeros(0, bool),
        truncated=np.zeros(0, bool),
        names=[],
        poses=[],
        classes=None,
    )


def _spread(part: _voc.AnnotationSet, positions: list, paths: list) -> _voc.AnnotationSet:
    """``part`` (the files at ``positions``) placed into a set of all ``paths``, the others empty."""
    full = _empty_set(paths)
    counts = np.zeros(len(paths), np.int64)
    counts[positions] = np.diff(part.offsets)
    full.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    for name in ("widths", "heights", "depths", "segmented"):
        getattr(full, name)[positions] = getattr(part, name)
    for position, filename in zip(positions, part.filenames):
        full.filenames[position] = filename
    for name in ("boxes", "labels", "difficult", "truncated", "names", "poses"):
        setattr(full, name, getattr(part, name))
    return full


def read_annotation_files(paths: Sequence[str], num_threads: Optional[int] = None) -> tuple:
    """``(AnnotationSet with classes=None, {index: error})``: every file parsed natively; a
    file that cannot be read or parsed is empty in the set and reported with its error."""
    paths = [os.fspath(path) for path in paths]
    try:
        return _voc.load_annotations(paths, None, num_threads), {}
    except (AnnotationError, OSError):
        pass  # find every bad file, not only the first
    with ThreadPoolExecutor(_threads(num_threads)) as pool:  # the parser releases the GIL
        errors = dict(
            (i, error) for i, error in enumerate(pool.map(_parse_error, paths)) if error is not None
        )
    good = [i for i in range(len(paths)) if i not in errors]
    part = _voc.load_annotations([paths[i] for i in good], None, num_threads)
    return _spread(part, good, paths), errors


def select_rows(annotations: _voc.AnnotationSet, keep: np.ndarray) -> _voc.AnnotationSet:
    """``annotations`` with only the object rows where ``keep`` is true (offsets recomputed)."""
    if keep.all():
        return annotations
    owner = np.repeat(np.arange(len(annotations)), np.diff(annotations.offsets))
    counts = np.bincount(owner[keep], minlength=len(annotations))
    indices = np.flatnonzero(keep)
    return _voc.AnnotationSet(
        paths=annotations.paths,
        filenames=annotations.filenames,
        widths=annotations.widths,
        heights=annotations.heights,
        depths=annotations.depths,
        segmented=annotations.segmented,
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        boxes=annotations.boxes[indices],
        labels=annotations.labels[indices],
        difficult=annotations.difficult[indices],
        truncated=annotations.truncated[indices],
        names=[annotations.names[i] for i in indices],
        poses=[annotations.poses[i] for i in indices],
        classes=annotations.classes,
    )


def infer_classes(annotations: _voc.AnnotationSet) -> list:
    """Every class name in the annotations, sorted (deterministic whatever the file order)."""
    return sorted(set(annotations.names))


def assign_labels(
    annotations: _voc.AnnotationSet,
    classes: Sequence[str],
    unknown_classes: str,
    report: AnnotationReport,
) -> _voc.AnnotationSet:
    """Labels 1-based into ``classes``; objects of other classes raise (naming the file) or,
    with ``unknown_classes="skip"``, are dropped and counted in ``report.unknown_names``."""
    if unknown_classes not in UNKNOWN_CLASSES:
        raise ValueError(f"unknown_classes={unknown_classes!r}: use 'raise' or 'skip'")
    lookup = {name: label for label, name in enumerate(classes, start=1)}
    labels = np.fromiter((lookup.get(name, -1) for name in annotations.names), np.int64)
    annotations.labels = labels
    annotations.classes = tuple(classes)
    unknown = labels < 0
    if not unknown.any():
        return annotations
    if unknown_classes == "raise":
        row = int(np.flatnonzero(unknown)[0])
        sample = int(np.searchsorted(annotations.offsets, row, side="right") - 1)
        raise ValueError(
            f"{annotations.paths[sample]}: object of class {annotations.names[row]!r} is not "
            f"in classes {list(classes)} (pass unknown_classes='skip' to leave such objects out)"
        )
    report.unknown_names.update(annotations.names[i] for i in np.flatnonzero(unknown))
    return select_rows(annotations, ~unknown)


def drop_degenerate_boxes(
    annotations: _voc.AnnotationSet, report: AnnotationReport
) -> _voc.AnnotationSet:
    """Leaves out inverted, zero-area and non-finite boxes, each recorded in ``report``."""
    boxes = annotations.boxes
    finite = np.isfinite(boxes).all(axis=1)
    keep = finite & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if keep.all():
        return annotations
    owner = np.repeat(np.arange(len(annotations)), np.diff(annotations.offsets))
    for row in np.flatnonzero(~keep):
        box = boxes[row]
        if not finite[row]:
            why = "non-finite"
        elif box[2] < box[0] or box[3] < box[1]:
            why = "inverted"
        else:
            why = "zero-area"
        report.dropped_boxes.append((annotations.paths[owner[row]], box.tolist(), why))
    return select_rows(annotations, keep)


def fit_to_images(
    annotations: _voc.AnnotationSet, sizes: np.ndarray, report: AnnotationReport
) -> _voc.AnnotationSet:
    """Uses each image's real ``(width, height)`` (``sizes``, -1 where unknown): records missing
    or wrong declared sizes, stores the real ones, and clamps boxes to the image."""
    declared = np.stack([annotations.widths, annotations.heights], axis=1)
    known = (sizes > 0).all(axis=1)
    missing = (declared <= 0).any(axis=1) & known
    differs = known & ~missing & (declared != sizes).any(axis=1)
    report.size_from_image += [annotations.paths[i] for i in np.flatnonzero(missing)]
    report.size_mismatch += [
        (annotations.paths[i], tuple(declared[i].tolist()), tuple(sizes[i].tolist()))
        for i in np.flatnonzero(differs)
    ]
    annotations.widths = np.where(known, sizes[:, 0], annotations.widths).astype(np.int64)
    annotations.heights = np.where(known, sizes[:, 1], annotations.heights).astype(np.int64)
    counts = np.diff(annotations.offsets)
    width = np.repeat(annotations.widths, counts).astype(np.float32)
    height = np.repeat(annotations.heights, counts).astype(np.float32)
    boxes = annotations.boxes
    limit = np.stack([width, height, width, height], axis=1)
    clamped = np.where(limit > 0, np.clip(boxes, 0.0, np.maximum(limit, 0)), boxes)
    changed = (clamped != boxes).any(axis=1) & np.isfinite(boxes).all(axis=1)
    report.clamped_boxes += int(changed.sum())
    annotations.boxes = clamped.astype(np.float32)
    return annotations


def _image_size(path: str) -> tuple:
    from PIL import Image

    try:
        with Image.open(path) as image:  # reads the header only
            return image.size
    except Exception:  # an unreadable image fails when loaded, naming itself
        return (-1, -1)


def read_image_sizes(paths: Sequence[str], num_threads: Optional[int] = None) -> np.ndarray:
    """int64 ``[N, 2]`` ``(width, height)`` from each image's header (-1 where unreadable)."""
    with ThreadPoolExecutor(_threads(num_threads)) as pool:
        sizes = list(pool.map(_image_size, paths, chunksize=64))
    return np.asarray(sizes, dtype=np.int64).reshape(-1, 2)


def boxes_target(annotations: Any, index: int, canvas_size: tuple[int, int]) -> dict[str, Any]:
    """The typed (``target_format="boxes"``) target of sample ``index`` from native annotations,
    for an image of ``(height, width)``: what VOCDetection and VOCFolder return."""
    import torch
    from torchvision import tv_tensors

    rows = annotations.rows(index)
    return {
        "boxes": tv_tensors.BoundingBoxes(
            torch.from_numpy(annotations.boxes[rows].copy()),
            format=tv_tensors.BoundingBoxFormat.XYXY,
            canvas_size=canvas_size,
        ),
        "labels": torch.from_numpy(annotations.labels[rows].copy()),
        "difficult": torch.from_numpy(annotations.difficult[rows].copy()),
        "image_id": index,
    }
