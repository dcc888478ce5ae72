#!/usr/bin/env python3
"""CPU time per image of conveyor against the decode-only limit, paired round by round.

On a shared machine images/s (and the wall-clock ratio ``bench_loader.py`` reports) move by 2x
from one minute to the next; CPU seconds per image move much less, and a ratio of two CPU
figures measured seconds apart hardly at all. Each round of this script, in one process on the
same files, runs:

1. one single-thread pass of each reference decoder over the JPEGs:
   ``raw``: libjpeg-turbo itself (``tjDecompress2`` via ctypes, accurate DCT, RGB, files in
   memory; ``baselines/decode_limit.py``, the decode-only limit of ``bench_loader.py``) and
   ``decode``: conveyor's own read + full decode (``conveyor.io.decode_jpeg`` of the file);
2. one epoch of what is measured, charged the whole process's CPU time (every thread):
   ``engine``: the native engine alone (the one ``conveyor.DataLoader`` builds, with its ops
   and targets, driven directly: no collate, no Python per batch), per thread count;
   ``DataLoader``: ``bench_loader.py``'s conveyor column (``baselines/conveyor_loader.py``:
   VOCDetection + ``detection_collate`` or VOCSegmentation + default collate, torchvision v2
   transforms translated natively, ``--workers`` native threads).

Ratio = reference CPU per image / measured CPU per image: the fraction of the decode-only
limit the measured loader would reach on idle cores (``bench_loader.py``'s wall-clock ratio on
a quiet machine is at most this). Reported: the median over rounds of the per-round ratios.
Segmentation samples also decode a PNG mask, which the (JPEG) references do not count.
Writes ``results/bench_cpu_ratio.json`` and ``.png``::

    nice .venv/bin/python benchmarks/bench_cpu_ratio.py                 # ~5 minutes
    nice .venv/bin/python benchmarks/bench_cpu_ratio.py --images 200 --rounds 3 --pipelines det512
    nice .venv/bin/python benchmarks/bench_cpu_ratio.py --conveyor-tree OTHER_CHECKOUT/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "baselines"))

import conveyor_loader  # noqa: E402  (imports conveyor only when a loader is built)
from decode_limit import TurboDecoder, load_turbojpeg  # noqa: E402
from harness import Unavailable  # noqa: E402
from loader_report import PIPELINE_NAMES, TARGETS  # noqa: E402
from pipelines import DATASETS, PIPELINES  # noqa: E402
from voc_tree import ensure_tree  # noqa: E402


class Subject(NamedTuple):
    """One thing to measure: the JPEGs it reads, one epoch of it, what it says of itself."""

    files: list
    run_epoch: Callable[[int], int]  # epoch number -> images delivered
    info: Callable[[], dict]  # read after the rounds (e.g. which path the loader took)
    close: Callable[[], None]


def use_conveyor_tree(tree: str | None) -> str:
    """Puts the conveyor to measure first on ``sys.path``; returns where it was imported from.

    ``tree`` (another checkout's ``python/``), else this checkout's ``python/`` when its
    extension is built (``make inplace``), else the installed package.
    """
    if tree is None and any((REPO / "python" / "conveyor").glob("_core*")):
        tree = str(REPO / "python")
    if tree is not None:
        sys.path.insert(0, str(Path(tree).resolve()))
    import conveyor

    return conveyor.__file__


def loader_subject(
    dataset: str, pipeline: str, root: str, workers: int, batch_size: int
) -> Subject:
    """``bench_loader.py``'s conveyor column, iterated epoch after epoch."""
    loader = conveyor_loader.make_loader(dataset, pipeline, root, workers, batch_size, 0)

    def run_epoch(epoch: int) -> int:
        loader.set_epoch(epoch)
        return sum(conveyor_loader.batch_images(batch) for batch in loader)

    return Subject(
        list(loader.dataset.images),
        run_epoch,
        lambda: conveyor_loader.loader_info(loader),
        lambda: None,
    )


def engine_subject(
    dataset: str, pipeline: str, root: str, threads: int, batch_size: int
) -> Subject:
    """The engine ``conveyor.DataLoader`` would build for this loader (same ops, files and
    moving targets), fed a shuffled order per epoch and drained, each batch dropped."""
    import numpy as np

    try:
        from conveyor.loader.engine import IndexBatches
        from conveyor.loader.native_path import create_engine, native_setup
    except ImportError as exc:  # an older build (--conveyor-tree) without them
        raise Unavailable(
            f"this conveyor has no conveyor.loader.native_path engine factory: {exc}"
        ) from exc
    loader = conveyor_loader.make_loader(dataset, pipeline, root, threads, batch_size, 0)
    setup = native_setup(loader)
    if setup is None or not setup.plan.fully_native:
        raise Unavailable(f"{dataset} {pipeline} does not run fully natively with this conveyor")
    engine = create_engine(loader, setup)
    count = len(loader.dataset)

    def run_epoch(epoch: int) -> int:
        order = np.random.default_rng(epoch).permutation(count)
        engine.start_epoch(epoch, IndexBatches.regular(order, batch_size))
        images = 0
        while (batch := engine.next_batch()) is not None:
            images += len(batch.indices)
        return images

    return Subject(list(loader.dataset.images), run_epoch, dict, engine.close)


def decode_pass(files: list, blobs: list, raw: TurboDecoder) -> tuple[float, float]:
    """(raw libjpeg-turbo, conveyor read + decode) CPU seconds per image, one thread, one pass."""
    from conveyor.io import decode_jpeg

    start = time.thread_time()
    for blob in blobs:
        raw.decode(blob)
    raw_s = (time.thread_time() - start) / len(blobs)
    start = time.thread_time()
    for path in files:
        with open(path, "rb") as f:
            decode_jpeg(f.read())
    return raw_s, (time.thread_time() - start) / len(files)


def measure(subject: Subject, rounds: int, warmup_epochs: int, raw: TurboDecoder) -> dict:
    """Rounds of (reference decodes, one epoch of the subject); medians and paired ratios."""
    blobs = [Path(path).read_bytes() for path in subject.files]
    # Warm-up: page cache, thread scratch, and the batch buffers (a 96 MiB buffer's first use
    # page-faults ~0.1 s of CPU in a VM), none of which a training loop pays per epoch.
    for epoch in range(warmup_epochs):
        subject.run_epoch(epoch)
    raw_s, decode_s, measured_s = [], [], []
    for epoch in range(warmup_epochs, warmup_epochs + rounds):
        r, d = decode_pass(subject.files, blobs, raw)
        start = time.process_time()
        images = subject.run_epoch(epoch)
        measured_s.append((time.process_time() - start) / images)
        raw_s.append(r)
        decode_s.append(d)
    to_raw = [r / m for r, m in zip(raw_s, measured_s)]
    to_decode = [d / m for d, m in zip(decode_s, measured_s)]
    return {
        "cpu_ms_per_image": 1000 * statistics.median(measured_s),
        "raw_turbojpeg_cpu_ms_per_image": 1000 * statistics.median(raw_s),
        "decode_cpu_ms_per_image": 1000 * statistics.median(decode_s),
        "ratio_to_raw_turbojpeg": statistics.median(to_raw),
        "ratio_to_conveyor_decode": statistics.median(to_decode),
        "rounds_ratio_to_raw_turbojpeg": to_raw,
    }


def target_for(dataset: str, pipeline: str) -> float | None:
    return next(
        (
            wanted
            for d, p, top, bottom, wanted in TARGETS
            if (d, p, top, bottom) == (dataset, pipeline, "conveyor", "limit")
        ),
        None,
    )


def scenario_subjects(args: argparse.Namespace, dataset: str, pipeline: str, root: str) -> list:
    """(measured, threads, subject factory) for each thing ``--measure`` asks for."""
    chosen = []
    if "engine" in args.measure:
        chosen += [
            (
                "engine",
                threads,
                partial(engine_subject, dataset, pipeline, root, threads, args.batch_size),
            )
            for threads in args.engine_threads
        ]
    if "DataLoader" in args.measure:
        chosen.append(
            (
                "DataLoader",
                args.workers,
                partial(loader_subject, dataset, pipeline, root, args.workers, args.batch_size),
            )
        )
    return chosen


def measure_row(
    args: argparse.Namespace,
    dataset: str,
    pipeline: str,
    measured: str,
    threads: int,
    make: Callable[[], Subject],
    raw: TurboDecoder,
) -> dict:
    """One result row; a subject this conveyor cannot run is "not available", with the reason."""
    row = {
        "label": f"{measured} {dataset} {pipeline}, {threads} thr",
        "dataset": dataset,
        "pipeline": pipeline,
        "measured": measured,
        "threads": threads,
        "target_ratio": target_for(dataset, pipeline),
    }
    try:
        subject = make()
    except Unavailable as exc:
        print(f"{row['label']:42s} not available: {exc}", flush=True)
        return {**row, "status": "not available", "reason": str(exc), "value": None}
    try:
        row.update(measure(subject, args.rounds, args.warmup_epochs, raw), loader=subject.info())
    finally:
        subject.close()  # one subject at a time: each holds its own batch buffers
    print(
        f"{row['label']:42s} {row['cpu_ms_per_image']:.2f} ms CPU/image  "
        f"x raw {row['ratio_to_raw_turbojpeg']:.2f}  "
        f"x decode {row['ratio_to_conveyor_decode']:.2f}",
        flush=True,
    )
    return {**row, "status": "ok", "value": row["ratio_to_raw_turbojpeg"]}


def markdown_table(rows: list) -> str:
    lines = [
        "| dataset | pipeline | measured | threads | CPU ms/image | x raw libjpeg-turbo "
        "(per round) | x conveyor read+decode | target |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(
                f"| {row['dataset']} | {PIPELINE_NAMES[row['pipeline']]} | "
                f"{row['measured']} | {row['threads']} | not available: {row['reason']} "
                "| | | |"
            )
            continue
        rounds = ", ".join(f"{r:.2f}" for r in row["rounds_ratio_to_raw_turbojpeg"])
        target = "" if row["target_ratio"] is None else f">= {row['target_ratio']}"
        lines.append(
            f"| {row['dataset']} | {PIPELINE_NAMES[row['pipeline']]} | {row['measured']} | "
            f"{row['threads']} | {row['cpu_ms_per_image']:.2f} | "
            f"**{row['ratio_to_raw_turbojpeg']:.2f}** ({rounds}) | "
            f"{row['ratio_to_conveyor_decode']:.2f} | {target} |"
        )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument(
        "--pipelines", nargs="+", choices=sorted(PIPELINES), default=["det512", "rrc224"]
    )
    parser.add_argument(
        "--measure", nargs="+", choices=["engine", "DataLoader"], default=["engine", "DataLoader"]
    )
    parser.add_argument("--engine-threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workers", type=int, default=2, help="DataLoader native threads")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--images",
        type=int,
        default=1000,
        help="images in the generated VOC tree (bench_loader.py's: 1000); one epoch per round",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup-epochs", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_cpu_ratio.json")
    parser.add_argument(
        "--conveyor-tree",
        metavar="PATH",
        help="the python/ folder of another conveyor build to measure (run the "
        "script once with it and once without, alternately, to compare)",
    )
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup_epochs < 0 or args.images < args.batch_size:
        parser.error("--rounds must be >= 1, --warmup-epochs >= 0, --images >= --batch-size")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    imported_from = use_conveyor_tree(args.conveyor_tree)
    started = datetime.now(timezone.utc)
    load_start = os.getloadavg()
    tree = ensure_tree(args.data_dir / f"voc-{args.images}", args.images)
    root = str(tree["root"])
    raw = TurboDecoder(load_turbojpeg())
    try:
        rows = [
            measure_row(args, dataset, pipeline, measured, threads, make, raw)
            for dataset in args.datasets
            for pipeline in args.pipelines
            for measured, threads, make in scenario_subjects(args, dataset, pipeline, root)
        ]
    finally:
        raw.close()
    report = {
        "benchmark": "conveyor CPU time per image vs the decode-only limit",
        "baseline": "single-thread raw libjpeg-turbo (tjDecompress2 via ctypes, bench_loader's "
        "decode-only limit) and conveyor read+decode, same files, paired round by round",
        "command": " ".join(
            [
                *(["nice", "-n", str(os.nice(0))] if os.nice(0) else []),
                Path(sys.executable).name,
                *sys.argv,
            ]
        ),
        "started_utc": started.strftime("%Y-%m-%d %H:%M"),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "conveyor": imported_from,
        "tree": {k: str(v) if isinstance(v, Path) else v for k, v in tree.items()},
        "rounds": args.rounds,
        "warmup_epochs": args.warmup_epochs,
        "batch_size": args.batch_size,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    if not args.no_plot:
        try:
            from plot import plot_results

            plot_results(
                rows,
                args.out.with_suffix(".png"),
                value_format="%.2f",
                title="CPU-time ratio to raw libjpeg-turbo decode (higher is better)",
                ylabel="x decode-only limit",
            )
        except ImportError as exc:  # matplotlib missing: the JSON is the result
            print(f"no plot: {exc}", file=sys.stderr)
    print(markdown_table(rows))
    print(
        f"{report['started_utc']} UTC, load average {load_start[0]:.2f} -> "
        f"{report['load_average_end'][0]:.2f}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
