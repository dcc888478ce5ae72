"""Per-image cost of the native colour kernels (conveyor._core.kernels) next to torchvision's
v2 kernels on the same uint8 images, single thread.

Each kernel runs on the same VOC-sized photos (500x375 by default, the test suite's generator)
with a fixed factor; the time is the calling thread's CPU time (time.thread_time) per image,
median over interleaved rounds (one pass of every column per round), so load from other
processes hits all columns alike. The conveyor column includes the copy of the numpy image
into the kernel's planar buffer and back (as the binding does), torchvision's includes nothing
but its kernel on a CHW uint8 tensor.

Usage: nice .venv/bin/python benchmarks/bench_photometric.py [--images 8] [--rounds 7]
       [--size 500x375] [--kernels hue,saturation,contrast,brightness]
Writes benchmarks/results/bench_photometric.json and .png.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

import source_tree  # noqa: E402,F401  (this checkout's build first)
from imagegen import photo_like  # noqa: E402
from plot import plot_results  # noqa: E402
from torchvision.transforms.v2 import functional as F  # noqa: E402

from conveyor import _core  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FACTORS = {"hue": 0.2, "saturation": 1.4, "contrast": 0.7, "brightness": 1.2}


def kernels(name: str):
    """(conveyor, torchvision) callables for one kernel on CHW numpy / CHW tensor images."""
    factor = FACTORS[name]
    native = getattr(_core.kernels, f"adjust_{name}")
    reference = getattr(F, f"adjust_{name}")
    return (lambda image: native(image, factor)), (lambda image: reference(image, factor))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT")
    parser.add_argument("--kernels", default="hue,saturation,contrast,brightness")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(1)
    photos = [photo_like(height, width, seed=seed) for seed in range(args.images)]
    tensors = [torch.from_numpy(photo).permute(2, 0, 1).contiguous() for photo in photos]
    images = [tensor.numpy() for tensor in tensors]
    names = args.kernels.split(",")
    columns = {}
    for name in names:
        native, reference = kernels(name)
        columns[f"conveyor {name}"] = (native, images)
        columns[f"torchvision {name}"] = (reference, tensors)
    times = {label: [] for label in columns}
    for _ in range(args.rounds):
        for label, (run, inputs) in columns.items():
            start = time.thread_time()
            for image in inputs:
                run(image)
            times[label].append((time.thread_time() - start) / len(inputs))
    rows = []
    for label, samples in times.items():
        ms = 1e3 * statistics.median(samples)
        rows.append({"label": label, "ms_per_image": round(ms, 3)})
        print(f"{label:24s} {ms:8.3f} ms/image")
    ratios = {}
    for name in names:
        ours = statistics.median(times[f"conveyor {name}"])
        theirs = statistics.median(times[f"torchvision {name}"])
        ratios[name] = round(theirs / ours, 2)
        print(f"{name}: conveyor is {theirs / ours:.2f}x torchvision's kernel")
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "bench_photometric",
        "size": [width, height],
        "images": args.images,
        "rounds": args.rounds,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "results": rows,
        "speedup_vs_torchvision": ratios,
    }
    out = RESULTS / "bench_photometric.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot_results(
        rows,
        out.with_suffix(".png"),
        value_key="ms_per_image",
        title=f"colour kernels, {width}x{height}, one thread (lower is better)",
        ylabel="ms per image",
        value_format="%.2f",
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
