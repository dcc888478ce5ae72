"""Engine throughput vs the decode-only limit, side by side on the same files and cores.

The decode-only limit is libjpeg-turbo's single-thread decode rate on these files (read +
full decode, conveyor.io.decode_jpeg in one thread) times the number of engine threads. The
engine runs the issue's two pipelines on the same files:

* detection: Resize(512x512) + RandomHorizontalFlip + ToDtype(float32, scale) + Normalize,
* classification: RandomResizedCrop(224) + RandomHorizontalFlip + ToDtype + Normalize,

batch 32, consuming and dropping each batch (as a training loop would). CPU-time ratios
(robust to other jobs on a shared machine) are given against that decode and against raw
libjpeg-turbo (tjDecompress2 via ctypes from memory: bench_loader.py's decode-only limit,
about 10% faster than conveyor's read + decode). Writes JSON (and a
PNG when matplotlib is available). Run it under ``nice`` on a quiet machine::

    PYTHONPATH=python nice .venv/bin/python benchmarks/bench_engine.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
PIPELINES = {
    "detection_512": [
        {"op": "resize", "size": [512, 512]}, {"op": "hflip", "p": 0.5},
        {"op": "to_dtype", "dtype": "float32", "scale": True},
        {"op": "normalize", "mean": MEAN, "std": STD}],
    "rrc_224": [
        {"op": "random_resized_crop", "size": 224}, {"op": "hflip", "p": 0.5},
        {"op": "to_dtype", "dtype": "float32", "scale": True},
        {"op": "normalize", "mean": MEAN, "std": STD}],
}
TARGETS = {"detection_512": 0.6, "rrc_224": 0.9}


def make_photo_like_jpegs(folder: Path, count: int, seed: int = 0) -> list:
    """VOC-like 500x375 q90 JPEGs with photo-like statistics (smooth regions, edges, grain)."""
    import torch
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        coarse = torch.from_numpy(rng.integers(0, 256, (1, 3, 12, 16)).astype(np.float32))
        base = torch.nn.functional.interpolate(coarse, size=(375, 500), mode="bicubic")[0]
        image = base.permute(1, 2, 0).numpy()
        for _ in range(6):  # a few flat objects with sharp edges
            x0, y0 = rng.integers(0, 450), rng.integers(0, 330)
            image[y0:y0 + rng.integers(20, 120), x0:x0 + rng.integers(20, 160)] = rng.integers(0, 256, 3)
        image += rng.normal(0, 3, image.shape)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def decode_only_rate(paths: list, seconds: float, cpu: Optional[list] = None) -> float:
    """Images/s of one thread reading and fully decoding the files with libjpeg-turbo
    (appends the CPU seconds per image to `cpu` when given)."""
    from conveyor.io import decode_jpeg

    count, start, cpu_start = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - start < seconds:
        for path in paths:
            with open(path, "rb") as f:
                decode_jpeg(f.read())
            count += 1
    if cpu is not None:
        cpu.append((time.thread_time() - cpu_start) / count)
    return count / (time.perf_counter() - start)


def raw_turbojpeg_cpu(paths: list, seconds: float) -> Optional[float]:
    """CPU seconds per image of libjpeg-turbo itself (tjDecompress2 via ctypes from memory,
    no file read, no Python wrapping): the decode-only limit of ``bench_loader.py``, or None
    when libturbojpeg cannot be loaded."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "baselines"))
    try:
        from decode_limit import TurboDecoder, load_turbojpeg

        decoder = TurboDecoder(load_turbojpeg())
    except Exception as error:  # no libturbojpeg: the column reads null
        print(f"no raw libjpeg-turbo reference: {error}", file=sys.stderr)
        return None
    blobs = [Path(path).read_bytes() for path in paths]
    try:
        count, start, cpu_start = 0, time.perf_counter(), time.thread_time()
        while time.perf_counter() - start < seconds:
            for blob in blobs:
                decoder.decode(blob)
            count += len(blobs)
        return (time.thread_time() - cpu_start) / count
    finally:
        decoder.close()


def parallel_decode_rate(paths: list, threads: int, seconds: float) -> float:
    """Images/s of `threads` Python threads decoding at once (decoding releases the GIL): what
    the cores actually deliver right now, for context on a shared machine."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        rates = list(pool.map(lambda _: decode_only_rate(paths, seconds), range(threads)))
    return float(sum(rates))


def engine_rate(paths: list, pipeline: list, threads: int, batch_size: int, epochs: int,
                cpu: Optional[list] = None) -> float:
    from conveyor._engine import Engine

    engine = Engine(pipeline, paths, batch_size=batch_size, num_threads=threads, prefetch=4,
                    shuffle=True, seed=0)
    # Warm-up epochs: page cache, thread scratch, and the buffer pool: a batch buffer's first
    # use page-faults 96 MiB (~0.1 s of CPU in a VM), which must not land in a short window.
    for epoch in range(2):
        engine.start_epoch(epoch)
        while engine.next_batch() is not None:
            pass
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    for epoch in range(2, epochs + 2):
        engine.start_epoch(epoch)
        while (batch := engine.next_batch()) is not None:
            count += len(batch.indices)
            del batch
    elapsed = time.perf_counter() - start
    if cpu is not None:  # all threads of the process, the consumer loop included
        cpu.append((time.process_time() - cpu_start) / count)
    engine.close()
    return count / elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 2])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="alternating measurement rounds")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_photo_like_jpegs(Path(tmp), args.images)
        decode_only, decode_cpu, parallel = [], [], {t: [] for t in args.threads}
        raw_cpu = []
        engine = {(name, t): [] for name in PIPELINES for t in args.threads}
        engine_cpu = {(name, t): [] for name in PIPELINES for t in args.threads}
        for _ in range(args.rounds):  # alternate, so load changes hit both sides alike
            decode_only.append(decode_only_rate(paths, 3.0, decode_cpu))
            raw = raw_turbojpeg_cpu(paths, 2.0)
            if raw is not None:
                raw_cpu.append(raw)
            for threads in args.threads:
                parallel[threads].append(parallel_decode_rate(paths, threads, 2.0))
                for name, pipeline in PIPELINES.items():
                    engine[name, threads].append(engine_rate(
                        paths, pipeline, threads, args.batch_size, args.epochs,
                        engine_cpu[name, threads]))
    single = float(np.median(decode_only))
    # CPU seconds per image, robust to other processes on a shared machine: the ratio a
    # machine with idle cores would show, per thread (with N threads, the engine's threads
    # also compete with each other for caches and memory bandwidth).
    # Each round's ratio pairs measurements taken seconds apart (under the same load); the
    # median over rounds is then steadier than a ratio of medians.
    def paired(reference: list, values: list) -> Optional[float]:
        if not reference or len(reference) != len(values):
            return None
        return float(np.median(np.asarray(reference) / np.asarray(values)))

    cpu_ratios = {key: paired(decode_cpu, values) for key, values in engine_cpu.items()}
    raw_ratios = {key: paired(raw_cpu, values) for key, values in engine_cpu.items()}
    rows = []
    for threads in args.threads:
        limit = single * threads
        measured = float(np.median(parallel[threads]))
        rows.append({"label": f"decode-only limit, {threads} thr", "value": limit, "images_per_s": limit,
                     "threads": threads, "measured_parallel_decode_per_s": measured})
        for name in PIPELINES:
            rate = float(np.median(engine[name, threads]))
            rows.append({"label": f"engine {name}, {threads} thr", "value": rate, "images_per_s": rate,
                         "threads": threads, "ratio_to_decode_limit": rate / limit,
                         "ratio_to_measured_parallel_decode": rate / measured,
                         "cpu_time_ratio_to_decode": cpu_ratios.get((name, threads)),
                         "cpu_time_ratio_to_raw_turbojpeg": raw_ratios.get((name, threads)),
                         "target_ratio": TARGETS[name]})
    result = {
        "benchmark": "engine vs decode-only limit",
        "baseline": "libjpeg-turbo single-thread read+decode rate x threads, same files, same run",
        "threads": args.threads, "images": args.images, "image_size": [375, 500],
        "batch_size": args.batch_size, "single_thread_decode_per_s": single,
        "decode_cpu_ms_per_image": 1000 * float(np.median(decode_cpu)),
        "raw_turbojpeg_cpu_ms_per_image": 1000 * float(np.median(raw_cpu)) if raw_cpu else None,
        "load_average": os.getloadavg(), "results": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "engine.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from plot import plot_results

        plot_results(result, args.out / "engine.png", value_key="images_per_s",
                     title="engine vs decode-only limit", ylabel="images/s")
    except ImportError as error:  # matplotlib missing: the JSON is the result
        print(f"no plot: {error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
