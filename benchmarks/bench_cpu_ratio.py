"""CPU-time ratios of the detection 512x512 pipeline to the decode, robust to a shared machine.

On a machine where other jobs come and go, images/s and even CPU time per image move by tens
of percent from one minute to the next. This script pairs measurements seconds apart instead:
each round runs one pass of the decoders over the files, then one epoch of the engine (or of
``conveyor.DataLoader``) over the same files, in one process; the figure is the median over
rounds of ``decode CPU per image / loader CPU per image`` (process CPU time, all threads:
what one idle core per thread would give, relative to decoding alone).

References, both single-thread, from memory:

* ``decode``: conveyor's read + full decode (``conveyor.io.decode_jpeg`` of the file's bytes);
* ``raw``: libjpeg-turbo itself (``tjDecompress2`` via ctypes, accurate DCT, RGB), the
  decode-only limit of ``bench_loader.py``.

Measured: ``engine`` (``conveyor._engine.Engine``, batches dropped) with 1 and 2 threads on
the first ``--engine-images`` files, and ``loader`` (``bench_loader.py``'s conveyor column:
``VOCDetection(transforms=v2.Compose([...Resize((512, 512))...]), target_format="boxes")``,
``DataLoader(batch_size=32, shuffle=True, num_workers=2, collate_fn=detection_collate)``) over
the whole tree. Run::

    PYTHONPATH=python nice .venv/bin/python benchmarks/bench_cpu_ratio.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "baselines"))

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
DETECTION_512 = [{"op": "resize", "size": [512, 512]}, {"op": "hflip", "p": 0.5},
                 {"op": "to_dtype", "dtype": "float32", "scale": True},
                 {"op": "normalize", "mean": MEAN, "std": STD}]


def decode_cpu(paths: list, blobs: list, raw) -> tuple:
    """(conveyor read + decode, raw libjpeg-turbo) CPU seconds per image, one pass each."""
    from conveyor.io import decode_jpeg

    start = time.thread_time()
    for path in paths:
        with open(path, "rb") as f:
            decode_jpeg(f.read())
    conveyor_s = (time.thread_time() - start) / len(paths)
    start = time.thread_time()
    for blob in blobs:
        raw.decode(blob)
    return conveyor_s, (time.thread_time() - start) / len(blobs)


def paired(reference: list, values: list) -> float:
    return float(np.median(np.asarray(reference) / np.asarray(values)))


def engine_rounds(paths: list, threads: int, rounds: int, raw) -> dict:
    from conveyor._engine import Engine

    blobs = [Path(p).read_bytes() for p in paths]
    engine = Engine(DETECTION_512, paths, batch_size=32, num_threads=threads, prefetch=2,
                    shuffle=True, seed=0)
    engine.start_epoch(0)  # warm-up: page cache, buffer pool, thread scratch
    while engine.next_batch() is not None:
        pass
    conveyor, turbo, measured = [], [], []
    for epoch in range(1, rounds + 1):
        c, r = decode_cpu(paths, blobs, raw)
        conveyor.append(c)
        turbo.append(r)
        engine.start_epoch(epoch)
        count, start = 0, time.process_time()
        while (batch := engine.next_batch()) is not None:
            count += len(batch.indices)
            del batch
        measured.append((time.process_time() - start) / count)
    engine.close()
    return {"threads": threads, "images": len(paths), "rounds": rounds,
            "engine_cpu_ms_per_image": 1000 * float(np.median(measured)),
            "decode_cpu_ms_per_image": 1000 * float(np.median(conveyor)),
            "raw_turbojpeg_cpu_ms_per_image": 1000 * float(np.median(turbo)),
            "cpu_ratio_to_decode": paired(conveyor, measured),
            "cpu_ratio_to_raw_turbojpeg": paired(turbo, measured)}


def loader_rounds(root: Path, rounds: int, raw) -> dict:
    from conveyor_loader import make_loader

    loader = make_loader("detection", "det512", str(root), 2, 32, 0)
    paths = list(loader.dataset.images)
    blobs = [Path(p).read_bytes() for p in paths]
    for _ in loader:  # warm-up epoch
        pass
    conveyor, turbo, measured = [], [], []
    for _ in range(rounds):
        c, r = decode_cpu(paths, blobs, raw)
        conveyor.append(c)
        turbo.append(r)
        count, start = 0, time.process_time()
        for images, _targets in loader:
            count += len(images)
        measured.append((time.process_time() - start) / count)
    return {"threads": 2, "images": len(paths), "rounds": rounds, "path": loader.stats.path,
            "loader_cpu_ms_per_image": 1000 * float(np.median(measured)),
            "decode_cpu_ms_per_image": 1000 * float(np.median(conveyor)),
            "raw_turbojpeg_cpu_ms_per_image": 1000 * float(np.median(turbo)),
            "cpu_ratio_to_decode": paired(conveyor, measured),
            "cpu_ratio_to_raw_turbojpeg": paired(turbo, measured)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="VOC tree size (bench_loader's)")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--engine-images", type=int, default=192)
    parser.add_argument("--engine-rounds", type=int, default=12)
    parser.add_argument("--loader-rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)

    from decode_limit import TurboDecoder, load_turbojpeg
    from voc_tree import ensure_tree

    root = args.data_dir / f"voc-{args.images}"
    tree = ensure_tree(root, args.images)
    paths = sorted(str(p) for p in (root / "VOCdevkit" / "VOC2012" / "JPEGImages").glob("*.jpg"))
    raw = TurboDecoder(load_turbojpeg())
    try:
        results = [dict(measured="engine", **engine_rounds(paths[: args.engine_images], threads,
                                                          args.engine_rounds, raw))
                   for threads in (1, 2)]
        results.append(dict(measured="loader", **loader_rounds(root, args.loader_rounds, raw)))
    finally:
        raw.close()
    result = {"benchmark": "detection 512x512: CPU time per image relative to decoding",
              "baseline": "single-thread conveyor read+decode and raw libjpeg-turbo, same files, "
                          "paired round by round", "tree": tree,
              "load_average": os.getloadavg(), "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cpu_ratio.json").write_text(json.dumps(result, indent=2))
    for row in results:
        print(f"{row['measured']:6s} {row['threads']} thr: {row.get('engine_cpu_ms_per_image', row.get('loader_cpu_ms_per_image')):.3f} ms/img"
              f"  decode/it {row['cpu_ratio_to_decode']:.3f}  raw libjpeg-turbo/it {row['cpu_ratio_to_raw_turbojpeg']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
