"""``conveyor doctor`` on a 17,000-image labelImg tree, side by side with the script a user would
write for the same checks (Pillow full decode + ElementTree parse + hashlib, in a thread pool of
the same size).

The tree (``images/`` + ``annotations/``, 320x240 JPEGs, 1-3 boxes of 3 custom classes) is
generated once into benchmarks/data/doctor_17000. Run under nice (the machine is shared):
``nice -n 5 python benchmarks/bench_doctor.py --threads 2``.
Writes benchmarks/results/bench_doctor.json and .png.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
from source_tree import SOURCE_TREE  # noqa: E402, F401  (this checkout's build first)

sys.path.insert(0, str(ROOT / "benchmarks"))

from plot import plot_results  # noqa: E402

from conveyor.doctor import diagnose  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CLASSES = ("raccoon", "traffic sign", "zebra")


def make_tree(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` distinct 320x240 JPEGs with labelImg XML files (written once)."""
    marker = root / ".complete"
    if marker.is_file():
        return root
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:240, 0:320]
    base = np.stack([x * 0.6, y * 0.8, (x + y) * 0.3], axis=-1).astype(np.float32)
    for i in range(count):
        pixels = base + rng.normal(0, 8, (1, 1, 3))
        x0, y0 = int(rng.integers(0, 240)), int(rng.integers(0, 160))
        pixels[y0 : y0 + 60, x0 : x0 + 70] += rng.uniform(-80, 80, 3)
        out = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=85)
        (root / "images" / f"{i:06d}.jpg").write_bytes(out.getvalue())
        objects = []
        for _ in range(int(rng.integers(1, 4))):
            bx, by = int(rng.integers(1, 250)), int(rng.integers(1, 180))
            name = CLASSES[int(rng.integers(0, 3))]
            objects.append(
                f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{bx}</xmin>"
                f"<ymin>{by}</ymin><xmax>{bx + 60}</xmax><ymax>{by + 50}</ymax></bndbox></object>"
            )
        (root / "annotations" / f"{i:06d}.xml").write_text(
            f"<annotation><filename>{i:06d}.jpg</filename><size><width>320</width>"
            f"<height>240</height><depth>3</depth></size>{''.join(objects)}</annotation>"
        )
    marker.write_text("ok\n")
    return root


def python_check(image: Path, xml: Path) -> tuple:
    """The per-sample work of a hand-written checker: hash, full decode, parse."""
    data = image.read_bytes()
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    with Image.open(io.BytesIO(data)) as decoded:
        decoded.load()
        size = decoded.size
    tree = ET.parse(xml).getroot()
    boxes = [
        [float(obj.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]
        for obj in tree.iter("object")
    ]
    return digest, size, boxes


def run_python(root: Path, threads: int) -> float:
    images = sorted((root / "images").iterdir())
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(
            pool.map(
                lambda p: python_check(p, root / "annotations" / (p.stem + ".xml")),
                images,
                chunksize=64,
            )
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=17000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    root = make_tree(ROOT / "benchmarks" / "data" / f"doctor_{args.images}", args.images)

    started = time.perf_counter()
    result = diagnose(str(root), num_threads=args.threads, progress=False)
    conveyor_seconds = time.perf_counter() - started
    assert result.images == args.images and result.ok, result.counts()
    python_seconds = run_python(root, args.threads)

    rows = [
        {"label": "conveyor doctor", "seconds": conveyor_seconds},
        {"label": "Pillow + ElementTree + hashlib", "seconds": python_seconds},
    ]
    report = {
        "scenario": f"check a {args.images}-image labelImg tree (320x240 JPEG), "
        f"{args.threads} threads",
        "baseline": "Pillow full decode + ElementTree parse + hashlib, same thread pool size",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "results": rows,
        "images_per_second": args.images / conveyor_seconds,
        "speedup_vs_baseline": python_seconds / conveyor_seconds,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_doctor.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_results(
        report,
        RESULTS / "bench_doctor.png",
        value_key="seconds",
        title=report["scenario"],
        ylabel="seconds (lower is better)",
        value_format="%.1f",
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
