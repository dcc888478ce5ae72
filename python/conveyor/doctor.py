"""``conveyor doctor PATH``: checks a VOC-format dataset before hours of training are lost to it.

Finds missing and orphan files, unreadable or corrupt images (every image fully decoded),
declared vs real image sizes, degenerate / inverted / out-of-bounds boxes, unknown and
near-duplicate class names, duplicate images (by content hash), empty annotations, and mask
problems; then prints a summary (images, objects per class, image and box size histograms).
Images are read, hashed and decoded by native code that releases the GIL, in a thread pool;
annotations are parsed by conveyor's native VOC reader in native threads.

Exit status: 0 when no errors were found (warnings allowed), 1 when errors were, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np

# finding kind -> severity; errors make `conveyor doctor` exit 1
SEVERITY = {
    "malformed-annotation": "error",
    "corrupt-image": "error",
    "orphan-annotation": "error",
    "missing-file": "error",
    "inverted-box": "error",
    "zero-area-box": "error",
    "non-finite-box": "error",
    "unknown-class": "error",
    "near-duplicate-class": "error",
    "bad-mask": "error",
    "orphan-image": "warning",
    "missing-size": "warning",
    "size-mismatch": "warning",
    "out-of-bounds-box": "warning",
    "duplicate-image": "warning",
    "empty-annotation": "warning",
}

BOX_SIZE_BINS = (0, 16, 32, 64, 128, 256, 512, float("inf"))
IMAGE_SIZE_BINS = (0, 128, 256, 512, 1024, 2048, 4096, float("inf"))


@dataclass
class Finding:
    kind: str
    path: str
    message: str

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]


@dataclass
class DoctorResult:
    """Everything ``conveyor doctor`` found (``--json`` prints ``as_dict()``)."""

    root: str
    layout: str
    task: str
    images: int = 0
    annotations: int = 0
    objects: int = 0
    classes: dict = field(default_factory=dict)  # name -> objects
    classes_source: str = ""
    findings: list = field(default_factory=list)
    image_sizes: list = field(default_factory=list)  # (width, height) of each decoded image
    box_sizes: list = field(default_factory=list)  # sqrt(area) of each valid box
    seconds: float = 0.0

    @property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict:
        return dict(sorted(Counter(f.kind for f in self.findings).items()))

    def histograms(self) -> dict:
        sides = [max(size) for size in self.image_sizes]
        return {
            "image_max_side": _histogram(sides, IMAGE_SIZE_BINS),
            "box_sqrt_area": _histogram(self.box_sizes, BOX_SIZE_BINS),
        }

    def as_dict(self) -> dict:
        return {
            "root": self.root,
            "layout": self.layout,
            "task": self.task,
            "ok": self.ok,
            "images": self.images,
            "annotations": self.annotations,
            "objects": self.objects,
            "classes": self.classes,
            "classes_source": self.classes_source,
            "counts": self.counts(),
            "errors": [asdict(f) for f in self.errors],
            "warnings": [asdict(f) for f in self.warnings],
            "histograms": self.histograms(),
            "seconds": round(self.seconds, 3),
        }


def _histogram(values: Sequence[float], bins: Sequence[float]) -> dict:
    counts = np.histogram(np.asarray(values, dtype=np.float64), bins=np.asarray(bins))[0]
    labels = [
        f"{int(lo)}-{int(hi)}" if hi != float("inf") else f">={int(lo)}"
        for lo, hi in zip(bins[:-1], bins[1:])
    ]
    return dict(zip(labels, counts.tolist()))


def _class_key(name: str) -> str:
    """Names that differ only in case, spaces, ``_`` or ``-`` are near-duplicates."""
    return re.sub(r"[\s_\-]+", "", name).casefold()


def _check_image(path: str) -> tuple:
    """``(path, (width, height) or None, content hash or None, error or None)``."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        return path, None, None, f"cannot be read: {error}"
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()  # releases the GIL
    try:
        if path.lower().endswith(".bmp"):
            import io

            from PIL import Image

            with Image.open(io.BytesIO(data)) as image:
                image.load()
                return path, image.size, digest, None
        from conveyor.io import decode_image

        # native, GIL released; fast IDCT: every byte is still decoded (validity, not pixels)
        pixels = decode_image(data, mode="unchanged", max_pixels=0, fast=True)
        return path, (int(pixels.shape[-1]), int(pixels.shape[-2])), digest, None
    except Exception as error:  # DecodeError and Pillow's many error types
        return path, None, digest, f"corrupt or unreadable image: {error}"


def _check_mask(path: str, image_size: Optional[tuple], num_classes: Optional[int]) -> list:
    from conveyor.datasets.voc import read_mask_tensor

    try:
        mask = read_mask_tensor(path)
    except Exception as error:
        return [Finding("bad-mask", path, f"unreadable mask: {error}")]
    findings = []
    size = (int(mask.shape[-1]), int(mask.shape[-2]))
    if image_size is not None and size != tuple(image_size):
        findings.append(
            Finding(
                "bad-mask",
                path,
                f"mask is {size[0]}x{size[1]}, its image {image_size[0]}x{image_size[1]}",
            )
        )
    if num_classes is not None:
        values = set(np.unique(mask.numpy()).tolist()) - {255}
        bad = sorted(v for v in values if v > num_classes)
        if bad:
            findings.append(
                Finding(
                    "bad-mask",
                    path,
                    f"mask values {bad} name no class (1..{num_classes}, 255 void)",
                )
            )
    return findings


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr, leave=False
    )


def diagnose(
    root: str,
    task: str = "detection",
    classes: Optional[Sequence[str]] = None,
    num_threads: Optional[int] = None,
    progress: bool = True,
    layout: Optional[str] = None,
) -> DoctorResult:
    """Runs every check on the VOC-format folder ``root`` (all splits).

    Args:
        root: the dataset folder.
        task: ``"detection"`` (XML annotations) or ``"segmentation"`` (masks; XML optional).
        classes: the expected class names; default: the folder's class file, else every name
            found (then unknown classes cannot be told, but near-duplicates still are).
        num_threads: threads (None: every core).
        progress: show a progress bar on stderr.
        layout: force a layout (see :mod:`conveyor.datasets.folder_layout`).
    """
    from conveyor.datasets import folder_annotations as fa
    from conveyor.datasets.folder_layout import index_folder, read_class_file

    started = time.perf_counter()
    threads = num_threads or max(1, os.cpu_count() or 1)
    index = index_folder(root, None, task, layout)
    result = DoctorResult(root=index.root, layout=index.layout, task=task)
    result.findings += [Finding(p.kind, p.path, p.message) for p in index.problems]
    if index.layout != "roboflow":  # split files listing samples that are not there
        for split in index.splits:
            listed = index_folder(root, split, task, layout)
            result.findings += [
                Finding(p.kind, p.path, f"{p.message} (listed in split {split!r})")
                for p in listed.problems
                if p.kind == "missing-file"
            ]
    # images: read, hash, fully decode (threads; the codecs release the GIL); unpaired too
    every_image = index.images + [p.path for p in index.problems if p.kind == "orphan-image"]
    result.images = len(every_image)
    sizes = np.full((len(every_image), 2), -1, np.int64)
    digests: dict = defaultdict(list)
    position = {path: i for i, path in enumerate(every_image)}
    with (
        ThreadPoolExecutor(threads) as pool,
        _progress(len(every_image), progress, "doctor") as bar,
    ):
        futures = [pool.submit(_check_image, path) for path in every_image]
        for future in as_completed(futures):
            path, size, digest, error = future.result()
            if error is not None:
                result.findings.append(Finding("corrupt-image", path, error))
            else:
                sizes[position[path]] = size
            if digest is not None:
                digests[digest].append(path)
            bar.update(1)
    for paths in digests.values():
        if len(paths) > 1:
            paths = sorted(paths)
            for path in paths[1:]:
                result.findings.append(
                    Finding("duplicate-image", path, f"same content as {paths[0]}")
                )
    result.image_sizes = [tuple(s) for s in sizes.tolist() if s[0] > 0]

    # classes
    if classes is not None:
        expected, result.classes_source = list(classes), "argument"
    elif index.class_file is not None:
        expected, result.classes_source = read_class_file(index.class_file), index.class_file
    else:
        expected, result.classes_source = None, "annotations"

    xml_paths = [path for path in index.annotations if path is not None]
    if xml_paths:
        rows = [i for i, path in enumerate(index.annotations) if path is not None]
        annotations, errors = fa.read_annotation_files(xml_paths, threads)
        result.annotations = len(xml_paths)
        for i, error in errors.items():
            result.findings.append(Finding("malformed-annotation", xml_paths[i], str(error)))
        _check_annotations(result, annotations, sizes[rows], set(errors), expected)
    if expected is not None:
        result.classes = {name: result.classes.get(name, 0) for name in expected} | result.classes
    if task == "segmentation":
        num = len(expected) if expected is not None else None
        for i, mask in enumerate(index.masks):
            size = tuple(sizes[i].tolist()) if sizes[i][0] > 0 else None
            result.findings += _check_mask(mask, size, num)
    result.seconds = time.perf_counter() - started
    return result


def _check_annotations(
    result: DoctorResult, annotations, sizes: np.ndarray, bad: set, expected: Optional[list]
) -> None:
    from conveyor.datasets import folder_annotations as fa

    counts = np.diff(annotations.offsets)
    for i in np.flatnonzero(counts == 0):
        if i not in bad:
            result.findings.append(
                Finding("empty-annotation", annotations.paths[i], "annotation has no objects")
            )
    names = Counter(annotations.names)
    result.objects = int(sum(names.values()))
    result.classes = dict(sorted(names.items()))
    # near-duplicates among the names used and the expected ones
    groups: dict = defaultdict(set)
    for name in set(names) | set(expected or ()):
        groups[_class_key(name)].add(name)
    for variants in groups.values():
        if len(variants) > 1:
            variants = sorted(variants)
            used = {v: names.get(v, 0) for v in variants}
            result.findings.append(
                Finding(
                    "near-duplicate-class",
                    "",
                    "class names that differ only in case, spaces, '_' or '-': "
                    + ", ".join(f"{v!r} ({used[v]} objects)" for v in variants),
                )
            )
    if expected is not None:
        owner = np.repeat(np.arange(len(annotations)), counts)
        known = set(expected)
        for row, name in enumerate(annotations.names):
            if name not in known:
                result.findings.append(
                    Finding(
                        "unknown-class",
                        annotations.paths[owner[row]],
                        f"object of class {name!r} not in the classes ({len(expected)} names)",
                    )
                )
    report = fa.AnnotationReport()
    original = annotations.boxes.copy()
    annotations = fa.fit_to_images(annotations, sizes, report)
    bad_paths = {annotations.paths[i] for i in bad}
    for path in report.size_from_image:
        if path in bad_paths:
            continue
        result.findings.append(Finding("missing-size", path, "no or a 0x0 <size>"))
    for path, declared, real in report.size_mismatch:
        result.findings.append(
            Finding(
                "size-mismatch",
                path,
                f"declares {declared[0]}x{declared[1]}, the image is {real[0]}x{real[1]}",
            )
        )
    owner = np.repeat(np.arange(len(annotations)), counts)
    moved = np.flatnonzero((annotations.boxes != original).any(axis=1))
    for box_row in moved.tolist():
        sample = int(owner[box_row])
        result.findings.append(
            Finding(
                "out-of-bounds-box",
                annotations.paths[sample],
                f"box {[round(float(v), 2) for v in original[box_row]]} of {annotations.names[box_row]!r} "
                f"extends past the {annotations.widths[sample]}x{annotations.heights[sample]} image",
            )
        )
    kept = fa.drop_degenerate_boxes(annotations, report)
    for path, box, why in report.dropped_boxes:
        result.findings.append(
            Finding(f"{why}-box", path, f"{why} box {[round(float(v), 2) for v in box]}")
        )
    boxes = kept.boxes
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0, None
    )
    result.box_sizes = np.sqrt(areas).tolist()


def build_parser(prog: str = "conveyor doctor") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Check a VOC-format dataset (any layout: VOCdevkit, CVAT, labelme2voc, "
        "Roboflow, labelImg): files, images (fully decoded), sizes, boxes, classes, duplicates. "
        "Exit status 0 when no errors were found, 1 when some were.",
    )
    parser.add_argument("path", help="the dataset folder")
    parser.add_argument("--task", choices=("detection", "segmentation"), default="detection")
    parser.add_argument(
        "--classes",
        default=None,
        help="expected class names, comma-separated (default: the "
        "folder's labelmap.txt / class_names.txt / classes.txt, else the names found)",
    )
    parser.add_argument("--layout", default=None, help="force a layout (default: detected)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: every core)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--plot", metavar="FILE", default=None, help="save histograms to FILE")
    parser.add_argument("--max_listed", type=int, default=20, help="findings listed per kind")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def main(command: str = "doctor", argv: Optional[list] = None) -> int:
    from conveyor.doctor_report import plot, render

    args = build_parser().parse_args(argv)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    try:
        result = diagnose(
            args.path,
            args.task,
            classes,
            args.threads,
            progress=not args.no_progress and not args.json and sys.stderr.isatty(),
            layout=args.layout,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"conveyor doctor: {error}", file=sys.stderr)
        return 2
    if args.plot:
        plot(result, args.plot)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(render(result, args.max_listed))
        if args.plot:
            print(f"plot: {args.plot}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
