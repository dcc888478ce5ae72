"""PNG mask decode speed per core: conveyor vs raw libspng vs Pillow vs torchvision.io, single
thread, on the same in-memory VOC segmentation masks (8-bit palette PNGs).

Every decoder decodes the same list of PNG bytes from memory to palette indices. Time is the
decoding thread's CPU time (time.thread_time); rounds are interleaved (one pass of every column
per round) and the median round is reported, so load from other processes hits all columns
alike; read the ratios.

Columns:
  conveyor     conveyor.io.decode_png(bytes) -> 1xHxW uint8 tensor (libdeflate path)
  libspng      libspng's own decode (ctypes: spng_ctx_new, spng_set_png_buffer,
               spng_decode_image to SPNG_FMT_PNG into a preallocated buffer): what conveyor
               ran before its libdeflate path, without any Python wrapping
  pillow       numpy.asarray(Image.open(BytesIO(b))) (mode "P": the indices)
  torchvision  torchvision.io.decode_png(uint8 tensor) (ImageReadMode.UNCHANGED)

Usage: nice -n 10 .venv/bin/python benchmarks/bench_png.py [--images 200] [--rounds 9]
       [--source realvoc] [--data-dir DIR] [--out PATH] [--no-plot]
       --source realvoc     (the real corpus masks instead of bench_loader's generated tree)
Writes benchmarks/results/bench_png[_realvoc].json and .png (or --out PATH).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from source_tree import SOURCE_TREE  # noqa: E402, F401  (this checkout's build first)

RESULTS = ROOT / "benchmarks" / "results"
SPNG_FMT_PNG = 256


def generated_masks(root: Path | None, count: int) -> list[bytes]:
    """Masks of bench_loader.py's cached 1000-image tree, or of a `count`-image tree at `root`
    (conveyor.datasets.make_synthetic_voc)."""
    from voc_tree import ensure_tree

    if root is None:
        root = ROOT / "benchmarks" / "data" / "voc-1000"
        ensure_tree(root, 1000)
    else:
        ensure_tree(root, count)
    paths = sorted((root / "VOCdevkit" / "VOC2012" / "SegmentationClass").glob("*.png"))[:count]
    return [p.read_bytes() for p in paths]


def realvoc_masks(root: Path, count: int) -> list[bytes]:
    """The palette masks of the real corpus (../shared/data/realvoc), read-only."""
    found = [
        p.read_bytes()
        for p in sorted(root.rglob("*.png"))
        if "Segmentation" in str(p.parent) and p.read_bytes()[25:26] == b"\x03"
    ]  # IHDR colour type 3
    if not found:
        raise SystemExit(f"no palette masks under {root}")
    return (found * (count // len(found) + 1))[:count]


class RawSpng:
    """libspng through ctypes into a preallocated buffer: libspng's own speed."""

    def __init__(self):
        self.lib = ctypes.CDLL(ctypes.util.find_library("spng") or "libspng.so.0")
        self.lib.spng_ctx_new.restype = ctypes.c_void_p
        self.lib.spng_ctx_new.argtypes = [ctypes.c_int]
        self.lib.spng_ctx_free.argtypes = [ctypes.c_void_p]
        self.lib.spng_set_png_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        self.lib.spng_decoded_image_size.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_size_t),
        ]
        self.lib.spng_decode_image.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
        ]
        self.buffer = np.empty(8192 * 8192, np.uint8)

    def decode(self, data: bytes) -> np.ndarray:
        ctx = self.lib.spng_ctx_new(0)
        try:
            size = ctypes.c_size_t()
            if (
                self.lib.spng_set_png_buffer(ctx, data, len(data))
                or self.lib.spng_decoded_image_size(ctx, SPNG_FMT_PNG, ctypes.byref(size))
                or self.lib.spng_decode_image(
                    ctx, self.buffer.ctypes.data, size.value, SPNG_FMT_PNG, 0
                )
            ):
                raise RuntimeError("libspng failed")
            return self.buffer[: size.value]
        finally:
            self.lib.spng_ctx_free(ctx)


def decoders() -> dict:
    import torch
    import torchvision.io
    from PIL import Image

    from conveyor.io import decode_png

    spng = RawSpng()
    return {
        "conveyor": decode_png,
        "libspng": spng.decode,
        "pillow": lambda b: np.asarray(Image.open(io.BytesIO(b))),
        "torchvision": lambda b: torchvision.io.decode_png(
            torch.frombuffer(bytearray(b), dtype=torch.uint8)
        ),
    }


def check_same_pixels(columns: dict, masks: list[bytes]) -> None:
    """Every column must return the same indices before anything is timed."""
    for data in masks[:8]:
        reference = np.asarray(columns["pillow"](data)).reshape(-1)
        for name, decode in columns.items():
            got = np.asarray(decode(data)).reshape(-1)
            if not np.array_equal(got, reference):
                raise SystemExit(f"{name} decodes a mask differently from Pillow")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--source", choices=["generated", "realvoc"], default="generated")
    parser.add_argument("--realvoc", type=Path, default=ROOT.parent / "shared" / "data" / "realvoc")
    parser.add_argument(
        "--data-dir", type=Path, help="generated tree of --images samples (default: bench_loader's)"
    )
    parser.add_argument("--no-plot", action="store_true", help="JSON only (no matplotlib needed)")
    parser.add_argument(
        "--out", type=Path, help="results JSON (default: results/bench_png[_realvoc].json)"
    )
    args = parser.parse_args(argv)

    masks = (
        generated_masks(args.data_dir, args.images)
        if args.source == "generated"
        else realvoc_masks(args.realvoc, args.images)
    )
    columns = decoders()
    check_same_pixels(columns, masks)
    seconds: dict[str, list[float]] = {name: [] for name in columns}
    for _ in range(args.rounds):
        for name, decode in columns.items():
            start = time.thread_time()
            for data in masks:
                decode(data)
            seconds[name].append(time.thread_time() - start)

    rows = []
    base = statistics.median(seconds["conveyor"])
    for name, times in seconds.items():
        median = statistics.median(times)
        rows.append(
            {
                "label": name,
                "value": len(masks) / median,
                "ms_per_image": 1e3 * median / len(masks),
                "conveyor_speedup": median / base,
            }
        )
        print(
            f"{name:12s} {rows[-1]['value']:8.0f} masks/s  {rows[-1]['ms_per_image']:.3f} ms  "
            f"conveyor is {rows[-1]['conveyor_speedup']:.2f}x"
        )
    suffix = "" if args.source == "generated" else "_realvoc"
    out = args.out or RESULTS / f"bench_png{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "bench_png",
        "command": "python " + " ".join([Path(__file__).name, *sys.argv[1:]]),
        "time_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "loadavg": os.getloadavg(),
        "images": len(masks),
        "mean_bytes": float(np.mean([len(m) for m in masks])),
        "rounds": args.rounds,
        "results": rows,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_plot:
        from plot import plot_results

        plot_results(
            rows,
            out.with_suffix(".png"),
            value_key="value",
            title="PNG mask decode, one thread",
            ylabel="masks/s per core",
        )
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
