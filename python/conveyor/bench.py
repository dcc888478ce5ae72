"""``conveyor bench``: a quick side-by-side run of conveyor and torch's DataLoader.

Both loaders read the same VOC tree (a synthetic one written to a temporary directory unless
``--root`` is given) through the same ``torchvision.transforms.v2`` pipeline, on the same cores,
one after the other, and the command prints images/s, time to the first batch and the ratio.
The full benchmark suite (peers, plots, peak memory) is ``benchmarks/bench_loader.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Optional, Sequence

import torch
from torchvision.transforms import v2

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
PIPELINES = ("detection", "classification")


def build_transforms(pipeline: str) -> v2.Compose:
    """The transform pipeline of a scenario.

    Args:
        pipeline: ``"detection"`` (the issue's Resize(512x512) + flip + normalize) or
            ``"classification"`` (RandomResizedCrop(224) + flip + normalize).

    Returns:
        A ``v2.Compose`` both loaders use.
    """
    geometry = v2.Resize((512, 512)) if pipeline == "detection" else v2.RandomResizedCrop(224)
    return v2.Compose(
        [
            v2.ToImage(),
            geometry,
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )


def measure(loader: Any, max_batches: Optional[int]) -> Dict[str, float]:
    """Iterate ``loader`` once and time it.

    Args:
        loader: Any DataLoader yielding ``(images, targets)``.
        max_batches: Stop after this many batches (None: the whole epoch).

    Returns:
        ``images``, ``seconds``, ``first_batch_s`` and ``images_per_s``.
    """
    started = time.perf_counter()
    first = None
    images = 0
    for number, (batch, _targets) in enumerate(loader):
        if first is None:
            first = time.perf_counter() - started
        images += len(batch)
        if max_batches is not None and number + 1 >= max_batches:
            break
    seconds = time.perf_counter() - started
    return {
        "images": images,
        "seconds": seconds,
        "first_batch_s": first or 0.0,
        "images_per_s": images / seconds if seconds > 0 else 0.0,
    }


def _torch_loader(root: str, tf: Callable, args: argparse.Namespace) -> Any:
    import torchvision

    from conveyor.collate import detection_collate

    dataset = torchvision.datasets.wrap_dataset_for_transforms_v2(
        torchvision.datasets.VOCDetection(
            root, year=args.year, image_set=args.image_set, transforms=tf
        )
    )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        collate_fn=detection_collate,
    )


def _conveyor_loader(root: str, tf: Callable, args: argparse.Namespace) -> Any:
    from conveyor import DataLoader
    from conveyor.collate import detection_collate
    from conveyor.datasets import VOCDetection

    dataset = VOCDetection(
        root, year=args.year, image_set=args.image_set, transforms=tf, target_format="boxes"
    )
    return DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        collate_fn=detection_collate,
        seed=0,
    )


def run(root: str, args: argparse.Namespace) -> Dict[str, Any]:
    """Measure both loaders on ``root`` (torch first, then conveyor, each after a warm-up epoch
    that fills the page cache).

    Returns:
        The results dict printed (and written with ``--json``).
    """
    tf = build_transforms(args.pipeline)
    results: Dict[str, Any] = {
        "pipeline": args.pipeline,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "root": root,
    }
    for name, factory in (("torch", _torch_loader), ("conveyor", _conveyor_loader)):
        loader = factory(root, tf, args)
        measure(loader, args.batches)  # warm-up: page cache, worker start-up code paths
        results[name] = measure(loader, args.batches)
        if name == "conveyor":
            results[name]["path"] = loader.stats.path
        del loader
    results["ratio"] = results["conveyor"]["images_per_s"] / max(
        results["torch"]["images_per_s"], 1e-9
    )
    return results


def format_results(results: Dict[str, Any]) -> str:
    """A small human-readable table of ``run``'s results."""
    lines = [
        f"pipeline {results['pipeline']}, batch {results['batch_size']}, "
        f"{results['workers']} workers (torch: processes, conveyor: threads)",
        f"{'loader':<10}{'images/s':>10}{'first batch':>13}{'images':>8}",
    ]
    for name in ("torch", "conveyor"):
        r = results[name]
        lines.append(
            f"{name:<10}{r['images_per_s']:>10.1f}{r['first_batch_s']:>12.2f}s{r['images']:>8}"
        )
    lines.append(
        f"conveyor / torch: {results['ratio']:.2f}x"
        f" (conveyor path: {results['conveyor'].get('path', '?')})"
    )
    return "\n".join(lines)


def build_parser(prog: str = "conveyor bench") -> argparse.ArgumentParser:
    """The ``conveyor bench`` options."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="an existing VOC root (default: write a synthetic tree)")
    parser.add_argument("--year", default="2012", help="VOC year (default 2012)")
    parser.add_argument("--image-set", default="trainval", help="split (default trainval)")
    parser.add_argument(
        "--images", type=int, default=256, help="images in the synthetic tree (default 256)"
    )
    parser.add_argument(
        "--image-size",
        default="500x375",
        help="synthetic image size WxH (default 500x375, VOC-like)",
    )
    parser.add_argument("--pipeline", choices=PIPELINES, default="detection")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="torch worker processes / conveyor threads (default 2)",
    )
    parser.add_argument(
        "--batches",
        type=int,
        default=None,
        help="batches per measured epoch (default: the whole epoch)",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    return parser


def main(command: str = "bench", argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``conveyor bench``.

    Args:
        command: The subcommand name (for the usage line).
        argv: The arguments after the subcommand.

    Returns:
        The exit status.
    """
    args = build_parser(f"conveyor {command}").parse_args(argv)
    if args.batch_size < 1 or args.workers < 0 or args.images < 2:
        print(
            "conveyor bench: --batch-size must be >= 1, --workers >= 0, --images >= 2",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as scratch:
        root = args.root
        if root is None:
            from conveyor.datasets import make_synthetic_voc

            root = scratch
            print(
                f"writing {args.images} synthetic {args.image_size} images to {scratch} ...",
                flush=True,
            )
            make_synthetic_voc(
                root, num_images=args.images, year=args.year, image_size=args.image_size
            )
            args.image_set = "trainval"
        elif not os.path.isdir(root):
            print(f"conveyor bench: --root {root!r} is not a directory", file=sys.stderr)
            return 2
        results = run(root, args)
    print(format_results(results))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return 0
