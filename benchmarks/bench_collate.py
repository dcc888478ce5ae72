#!/usr/bin/env python3
"""Collate benchmark: the user's own collate vs conveyor's detection_collate, and torch's DataLoader.

The issue-4 detection recipe (conveyor ``VOCDetection(target_format="boxes")``, v2 ``ToImage,
Resize(512, 512), RandomHorizontalFlip, ToDtype(float32, scale), Normalize``), batch 16, the same
``num_workers`` everywhere, on the VOC-like tree of ``voc_tree.py``. Side by side in one run:

- conveyor + ``conveyor.collate.detection_collate`` (fused: built from the engine's buffers);
- conveyor + a user's collate (``torch.stack`` of the images, list of targets: runs on the
  finisher threads on per-sample views);
- conveyor + torchvision references' ``utils.collate_fn`` (``tuple(zip(*batch))``, fused);
- torch's DataLoader + torchvision's ``VOCDetection`` wrapped for v2, the same transforms and the
  user's collate (the baseline a user switches from).

Target: the user's collate at >= 0.9x detection_collate. Each case runs ``--repeats`` times,
interleaved (the order rotates each repeat), each time a fresh loader for ``--batches`` batches after one warm-up batch; the
median is reported. Everything runs under ``nice``:

    nice .venv/bin/python benchmarks/bench_collate.py             # about a minute on 2 cores
    nice .venv/bin/python benchmarks/bench_collate.py --batches 8 --repeats 2   # quicker

Writes ``benchmarks/results/bench_collate.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
from source_tree import SOURCE_TREE  # noqa: E402, F401  (this checkout's build first)

sys.path.insert(0, str(HERE))

import torch  # noqa: E402
import torchvision  # noqa: E402
from torchvision.transforms import v2  # noqa: E402
from voc_tree import ensure_tree  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def recipe() -> v2.Compose:
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((512, 512), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )


def user_collate(batch):
    """A user's collate: stacked images, a list of targets."""
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def references_collate_fn(batch):  # torchvision/references/detection/utils.py
    return tuple(zip(*batch))


def make_loader(case: str, root: Path, workers: int, batch_size: int):
    if case == "torch":
        dataset = torchvision.datasets.wrap_dataset_for_transforms_v2(
            torchvision.datasets.VOCDetection(root, image_set="trainval", transforms=recipe())
        )
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            num_workers=workers,
            collate_fn=user_collate,
            persistent_workers=False,
        )
    import conveyor
    from conveyor.collate import detection_collate

    collate = {
        "detection_collate": detection_collate,
        "user_collate": user_collate,
        "zip_collate": references_collate_fn,
    }[case]
    dataset = conveyor.datasets.VOCDetection(
        root, image_set="trainval", transforms=recipe(), target_format="boxes"
    )
    return conveyor.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, collate_fn=collate
    )


def measure(case: str, root: Path, workers: int, batch_size: int, batches: int) -> dict:
    """Images per second over ``batches`` batches after the first (start-up excluded)."""
    loader = make_loader(case, root, workers, batch_size)
    iterator = iter(loader)
    next(iterator)  # start-up: worker processes / threads, first decode
    started = time.perf_counter()
    images = 0
    for _ in range(batches):
        images_batch = next(iterator)[0]
        images += len(images_batch)
    elapsed = time.perf_counter() - started
    path = getattr(getattr(loader, "stats", None), "path", "torch")
    del iterator, loader
    return {"images_per_second": images / elapsed, "path": path}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=HERE / "data" / "voc-collate")
    parser.add_argument("--num-images", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_collate.json")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    tree = ensure_tree(args.root, args.num_images)
    root = Path(tree["root"]) if "root" in tree else args.root
    cases = ["detection_collate", "user_collate", "zip_collate", "torch"]
    runs: dict = {case: [] for case in cases}
    paths: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for repeat in range(args.repeats):
            # rotated each repeat: no case always follows torch's worker processes shutting down
            for case in cases[repeat % len(cases) :] + cases[: repeat % len(cases)]:
                result = measure(case, root, args.workers, args.batch_size, args.batches)
                runs[case].append(result["images_per_second"])
                paths[case] = result["path"]
    medians = {case: statistics.median(values) for case, values in runs.items()}
    base = medians["detection_collate"]
    rows = [
        {
            "label": case,
            "value": medians[case],
            "runs": runs[case],
            "path": paths[case],
            "vs_detection_collate": medians[case] / base,
            "vs_torch": medians[case] / medians["torch"],
        }
        for case in cases
    ]
    report = {
        "benchmark": "bench_collate",
        "recipe": "VOCDetection boxes, Resize(512,512) + hflip + ToDtype + Normalize",
        "workers": args.workers,
        "batch_size": args.batch_size,
        "batches": args.batches,
        "repeats": args.repeats,
        "baseline": "torch.utils.data.DataLoader + torchvision VOCDetection (v2 wrapper)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "torch": torch.__version__,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for row in rows:
        print(
            f"{row['label']:>18}: {row['value']:8.1f} img/s  ({row['path']}; "
            f"{row['vs_detection_collate']:.2f}x detection_collate, {row['vs_torch']:.2f}x torch)"
        )
    if not args.no_plot:
        from plot import plot_results

        plot_results(
            report,
            args.out.with_suffix(".png"),
            title=f"collates, {args.workers} workers, batch {args.batch_size}",
            ylabel="images / s",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
