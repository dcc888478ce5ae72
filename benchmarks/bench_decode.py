"""JPEG decode speed per core: conveyor vs Pillow vs pillow-simd vs torchvision.io vs raw
libjpeg-turbo, single thread, on the same in-memory VOC-like photos (500x375, q90, 4:2:0).

Every decoder decodes the same list of JPEG bytes from memory into RGB, full size and DCT-scaled
to 1/2. Time is the decoding thread's CPU time (time.thread_time), i.e. images/s per core, which
waiting for a shared core does not inflate. Rounds are interleaved (one pass of every column
per round) and the median round is reported, so load from other processes hits all columns
alike; read the ratios.

Columns:
  conveyor         conveyor.io.decode_jpeg(bytes[, scale=1/2]) -> CHW uint8 tensor
  conveyor-fast    the same with fast=True (fast IDCT + upsampling; not bit-exact with Pillow)
  conveyor-rrc     decode_jpeg(bytes, crop=region), full size only: the region a
                   RandomResizedCrop (torchvision's get_params, seeded) picks in each image,
                   decoded alone (libjpeg's crop/skip-scanlines; same pixels as the full decode)
  raw-turbojpeg    libjpeg-turbo's own speed: libturbojpeg's tjDecompress2 (ctypes, accurate
                   DCT, the same library conveyor links) into a preallocated buffer
  pillow           Image.open(BytesIO(b)) [+ draft("RGB", half size)] + load()
  pillow-simd      the same in pillow-simd's venv (a subprocess), when it exists
  torchvision      torchvision.io.decode_jpeg(uint8 tensor) (no DCT scaling: full size only)

Usage: nice -n 10 .venv/bin/python benchmarks/bench_decode.py [--images 48] [--rounds 9]
       [--source realvoc]     (the real corpus JPEGs instead of generated ones)
Writes benchmarks/results/bench_decode[_realvoc].json and .png.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import io
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "python"), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from imagegen import encode_jpeg, photo_like  # noqa: E402  (the test suite's generator)

RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_SIMD = ROOT / "benchmarks" / ".venv-pillow-simd" / "bin" / "python"

# Runs inside pillow-simd's interpreter: one timed pass per "full"/"half" line on stdin.
SIMD_WORKER = r"""
import io, pickle, sys, time
from PIL import Image, features
images = pickle.load(open(sys.argv[1], "rb"))
def decode(data, half):
    image = Image.open(io.BytesIO(data))
    if half:
        image.draft("RGB", (image.width // 2, image.height // 2))
    image.load()
print(Image.__version__ if hasattr(Image, "__version__") else "?", flush=True)
for line in sys.stdin:
    half = line.strip() == "half"
    start = time.thread_time()
    for data in images:
        decode(data, half)
    print(time.thread_time() - start, flush=True)
"""


def make_images(count: int) -> list[bytes]:
    return [
        encode_jpeg(photo_like(375, 500, seed=seed), quality=90, subsampling="420")
        for seed in range(count)
    ]


def realvoc_images(root: Path, count: int) -> list[bytes]:
    """Real VOC JPEGs of the corpus (../shared/data/realvoc) up to 640x480, read-only."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in (".jpg", ".jpeg") and path.is_file():
            data = path.read_bytes()
            if data.startswith(b"\xff\xd8\xff") and 20_000 < len(data) < 200_000:
                found.append(data)
    if not found:
        raise SystemExit(f"no JPEGs under {root}")
    return (found * (count // len(found) + 1))[:count]


class RawTurboJpeg:
    """tjDecompress2 through ctypes into a preallocated buffer: libjpeg-turbo's own speed."""

    def __init__(self):
        name = ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0"
        self.lib = ctypes.CDLL(name)
        self.lib.tjInitDecompress.restype = ctypes.c_void_p
        self.lib.tjDecompress2.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
        ]
        self.handle = ctypes.c_void_p(self.lib.tjInitDecompress())
        self.buffer = np.empty(4096 * 4096 * 3, np.uint8)
        self.pointer = self.buffer.ctypes.data_as(ctypes.c_void_p)

    def decode(self, data: bytes, width: int, height: int) -> None:
        # TJPF_RGB = 0, TJFLAG_ACCURATEDCT = 4096
        if self.lib.tjDecompress2(
            self.handle, data, len(data), self.pointer, width, 0, height, 0, 4096
        ):
            raise RuntimeError("tjDecompress2 failed")


def decoders(images, half: bool):
    """name -> function decoding all images once."""
    from fractions import Fraction

    import torch
    import torchvision.io as tvio
    from PIL import Image

    from conveyor import io as cio

    raw = RawTurboJpeg()
    scale = Fraction(1, 2) if half else None
    tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in images]

    def conveyor_pass():
        for data in images:
            cio.decode_jpeg(data, scale=scale)

    def conveyor_fast_pass():
        for data in images:
            cio.decode_jpeg(data, scale=scale, fast=True)

    from conveyor import _core

    sizes = [(h["width"], h["height"]) for h in map(_core.jpeg_header, images)]
    if half:
        sizes = [((w + 1) // 2, (h + 1) // 2) for w, h in sizes]

    rrc_regions = []
    generator = torch.Generator().manual_seed(0)
    for width, height in sizes:
        top, left, h, w = _rrc_params(width, height, generator)
        rrc_regions.append((left, top, w, h))

    def conveyor_rrc_pass():
        for data, region in zip(images, rrc_regions):
            cio.decode_jpeg(data, crop=region)

    def raw_pass():
        for data, (w, h) in zip(images, sizes):
            raw.decode(data, w, h)

    def pillow_pass():
        for data in images:
            image = Image.open(io.BytesIO(data))
            if half:
                image.draft("RGB", (image.width // 2, image.height // 2))
            image.load()

    def torchvision_pass():
        for tensor in tensors:
            tvio.decode_jpeg(tensor)

    result = {
        "conveyor": conveyor_pass,
        "raw-turbojpeg": raw_pass,
        "pillow": pillow_pass,
        "conveyor-fast": conveyor_fast_pass,
    }
    if not half:
        result["torchvision"] = torchvision_pass
        result["conveyor-rrc"] = conveyor_rrc_pass
    return result


def _rrc_params(width: int, height: int, generator) -> tuple:
    """torchvision RandomResizedCrop.get_params (scale 0.08-1, ratio 3/4-4/3): top, left, h, w."""
    import torch
    from torchvision.transforms import RandomResizedCrop

    state = torch.get_rng_state()
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
    try:
        return RandomResizedCrop.get_params(
            torch.empty(1, height, width), [0.08, 1.0], [3 / 4, 4 / 3]
        )
    finally:
        torch.set_rng_state(state)


class SimdWorker:
    def __init__(self, python: Path, images_file: str):
        self.process = subprocess.Popen(
            [str(python), "-c", SIMD_WORKER, images_file],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.version = self.process.stdout.readline().strip()

    def run(self, half: bool) -> float:
        self.process.stdin.write("half\n" if half else "full\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


def measure(images, rounds: int, simd_python: Path | None) -> list[dict]:
    """Runs every (decoder, size) pass once per round, all interleaved; median per column."""
    simd = None
    simd_reason = (
        f"not available ({DEFAULT_SIMD.relative_to(ROOT)} missing; run benchmarks/setup_peers.sh)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if simd_python is not None and simd_python.exists():
            images_file = os.path.join(tmp, "images.pkl")
            with open(images_file, "wb") as handle:
                pickle.dump(images, handle)
            simd = SimdWorker(simd_python, images_file)
        try:
            columns = {}
            for half in (False, True):
                size = "1/2" if half else "full"
                for name, run in decoders(images, half).items():
                    columns[(name, size)] = run
                if simd:
                    columns[("pillow-simd", size)] = lambda h=half: simd.run(h)
            times = {key: [] for key in columns}
            for round_index in range(rounds + 1):  # round 0 warms up
                for key, run in columns.items():
                    start = time.thread_time()
                    result = run()
                    elapsed = result if key[0] == "pillow-simd" else time.thread_time() - start
                    if round_index:
                        times[key].append(elapsed)
        finally:
            if simd:
                simd.close()
    rows = []
    for (name, size), seconds in times.items():
        median = statistics.median(seconds)
        rows.append(
            {
                "label": f"{name} {size}",
                "decoder": name,
                "size": size,
                "images_per_s": len(images) / median,
                "ms_per_image": 1000 * median / len(images),
                "rounds_cpu_s": seconds,
            }
        )
    if not simd:
        for size in ("full", "1/2"):
            rows.append(
                {
                    "label": f"pillow-simd {size}",
                    "decoder": "pillow-simd",
                    "size": size,
                    "images_per_s": None,
                    "note": simd_reason,
                }
            )
    return rows


def ratios(rows) -> dict:
    by = {(r["decoder"], r["size"]): r["images_per_s"] for r in rows}
    result = {}
    for size in ("full", "1/2"):
        key = "full" if size == "full" else "half"
        for ours in ("conveyor", "conveyor-fast", "conveyor-rrc"):
            for peer in ("pillow", "pillow-simd", "torchvision", "raw-turbojpeg"):
                if by.get((peer, size)) and by.get((ours, size)):
                    result[f"{ours}/{peer} {key}"] = round(by[(ours, size)] / by[(peer, size)], 3)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="number of distinct JPEGs")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved timed rounds")
    parser.add_argument(
        "--pillow-simd-python",
        type=Path,
        default=DEFAULT_SIMD,
        help="interpreter of the pillow-simd venv",
    )
    parser.add_argument(
        "--source",
        choices=["generated", "realvoc"],
        default="generated",
        help="generated VOC-like photos, or the real corpus JPEGs",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="default: benchmarks/results/bench_decode[_realvoc].json",
    )
    args = parser.parse_args(argv)
    import PIL
    import torch
    import torchvision

    from conveyor import _core

    if args.source == "realvoc":
        images = realvoc_images(ROOT.parent / "shared" / "data" / "realvoc", args.images)
        what = "real VOC-format JPEGs from ../shared/data/realvoc (20-200 KB)"
    else:
        images = make_images(args.images)
        what = "generated VOC-like photos, 500x375, q90, 4:2:0"
    if args.output is None:
        suffix = "_realvoc" if args.source == "realvoc" else ""
        args.output = RESULTS / f"bench_decode{suffix}.json"
    rows = measure(images, args.rounds, args.pillow_simd_python)
    report = {
        "benchmark": "bench_decode",
        "what": "single-thread JPEG decode from memory to RGB: " + what,
        "images": args.images,
        "mean_jpeg_bytes": int(np.mean([len(d) for d in images])),
        "rounds": args.rounds,
        "statistic": "median round of thread CPU time, all columns interleaved",
        "versions": {
            "conveyor_libs": _core.library_versions(),
            "pillow": PIL.__version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": platform.python_version(),
        },
        "nice": os.nice(0),
        "results": rows,
        "ratios": ratios(rows),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    from plot import plot_results

    plot_results(
        rows,
        args.output.with_suffix(".png"),
        value_key="images_per_s",
        title="JPEG decode, 1 thread (images/s, higher is better)",
        ylabel="images/s",
    )
    for row in rows:
        value = row["images_per_s"]
        print(
            f"{row['label']:24s} "
            + (f"{value:8.0f} img/s  {row['ms_per_image']:.3f} ms" if value else row["note"])
        )
    for name, value in report["ratios"].items():
        print(f"{name:34s} {value:.2f}x")
    print(f"wrote {args.output} and {args.output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
