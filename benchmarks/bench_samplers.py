#!/usr/bin/env python3
"""Batch samplers on the loader: the detection reference's configuration, conveyor vs torch.

Rows, side by side in one run on one tree of mixed aspect ratios (VOC's common sizes: 500x375,
375x500, 500x333, 333x500, 500x500), ``--workers`` workers, batch ``--batch-size``:

* ``torch``: ``torch.utils.data.DataLoader`` over torchvision's ``VOCDetection`` (wrapped for v2)
  with the detection reference's "hflip" preset (``RandomHorizontalFlip(0.5)``, to tensor,
  ``ToDtype(float32, scale=True)``; no resize: every image keeps its size), the reference's
  ``collate_fn`` (``tuple(zip(*batch))``) and its sampler: ``GroupedBatchSampler(RandomSampler,
  create_aspect_ratio_groups(k=3), batch)``, persistent worker processes;
* ``conveyor grouped``: ``conveyor.DataLoader`` over ``conveyor.datasets.VOCDetection`` with the
  same transforms and collate and ``conveyor.samplers.GroupedBatchSampler.from_dataset(k=3)``;
* ``conveyor shuffle=True`` and ``conveyor batch_sampler``: the same recipe with ``shuffle=True``
  and with ``batch_sampler=BatchSampler(RandomSampler(ds, generator), batch, False)``.

* ``conveyor grouped padded`` and ``conveyor shuffle=True padded``: the grouped and the
  ``shuffle=True`` rows with ``pad_to_multiple=32``: each batch comes as one zero-padded
  ``ImageList`` (what the detector's ``batch_images`` would build); the engine plans each batch's
  padded size from the annotations and its workers write each image straight into its slot.

Each row also reports its padding waste: the share of pixels that would be padding once each
batch is padded to its largest image (rounded up to 32, as torchvision detectors pad), grouped
vs ungrouped. The padded rows report ``loader.stats.padding_fraction`` (the loader's own count
of the padding it wrote), checked against the same figure measured from the batches.

torchvision's ``GroupedBatchSampler`` lives in its repository's ``references/``, not in the
package: pass ``--vision PATH`` (a pytorch/vision checkout) to use that very class in the torch
row; without it the torch row uses conveyor's, which yields the same batches for the same base
order (tests/test_samplers.py). Variable-size images are left unpadded on the rows without
"padded" (the reference's model pads them).

Each round times one epoch of every row (order alternating between rounds) after one warm-up
epoch; reported: the median images/s of each row, and each ratio as the median over rounds of
that round's ratio (the two rows ran back to back, under the same load: on a shared machine the
load moves more between rounds than the loaders differ). Also the CPU time per image of each
row (process tree: the torch row's worker processes included), which the machine's load hardly
moves, and the same ratios computed from it (``cpu_ratios``: how much work each row does per
image, not how fast it went). Writes ``results/bench_samplers.json`` and ``.png``::

    nice .venv/bin/python benchmarks/bench_samplers.py                     # ~2 minutes
    nice .venv/bin/python benchmarks/bench_samplers.py --images 96 --rounds 1   # smoke run
    nice .venv/bin/python benchmarks/bench_samplers.py --vision ~/src/vision
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
import torch  # noqa: E402
import torchvision  # noqa: E402
from source_tree import SOURCE_TREE  # noqa: E402, F401  (this checkout's build first)

sys.path.insert(0, str(HERE / "baselines"))
from harness import tree_cpu_seconds  # noqa: E402
from torch.utils.data import BatchSampler, RandomSampler  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

# (width, height) and share of the tree: VOC 2012's most common image sizes
SIZES = [((500, 375), 0.45), ((375, 500), 0.2), ((500, 333), 0.15), ((333, 500), 0.1)]
SIZES.append(((500, 500), 1.0 - sum(share for _, share in SIZES)))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--group-factor", type=int, default=3)
    parser.add_argument("--vision", type=Path, help="pytorch/vision checkout (its references/)")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/conveyor-bench-samplers"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_samplers.json")
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--no-plot", action="store_true")
    return parser.parse_args(argv)


def mixed_aspect_tree(root: Path, images: int) -> Path:
    """A VOC2012 tree of ``images`` samples in VOC's common sizes, interleaved; cached."""
    from conveyor.datasets import make_synthetic_voc

    marker = root / ".complete"
    wanted = json.dumps({"images": images, "sizes": SIZES, "version": 1})
    if marker.exists() and marker.read_text() == wanted:
        return root
    shutil.rmtree(root, ignore_errors=True)
    voc = root / "VOCdevkit" / "VOC2012"
    folders = ("JPEGImages", "Annotations", "SegmentationClass")
    for folder in folders + ("ImageSets/Main", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    ids = []
    for part, ((width, height), share) in enumerate(SIZES):
        count = max(2, round(images * share))
        tree = make_synthetic_voc(
            root / f"part{part}", num_images=count, image_size=(width, height), seed=part
        )
        for image_id in (tree / "ImageSets" / "Main" / "trainval.txt").read_text().split():
            new_id = f"{part}_{image_id}"
            for folder, ext in zip(folders, (".jpg", ".xml", ".png")):
                shutil.copy(tree / folder / f"{image_id}{ext}", voc / folder / f"{new_id}{ext}")
            ids.append(new_id)
        shutil.rmtree(root / f"part{part}")
    ids = [ids[i] for i in torch.randperm(len(ids), generator=torch.Generator().manual_seed(0))]
    for split in ("ImageSets/Main", "ImageSets/Segmentation"):
        (voc / split / "trainval.txt").write_text("".join(f"{i}\n" for i in ids))
    marker.write_text(wanted)
    return root


def hflip_preset() -> v2.Compose:
    """The detection reference's "hflip" training preset (v2): flip, to tensor, float."""
    return v2.Compose(
        [v2.ToImage(), v2.RandomHorizontalFlip(p=0.5), v2.ToDtype(torch.float32, scale=True)]
    )


def collate_fn(batch):
    """references/detection/utils.collate_fn."""
    return tuple(zip(*batch))


def torchvision_grouped_sampler(vision: Path | None):
    """torchvision's own GroupedBatchSampler class when a checkout is given, else conveyor's."""
    if vision is None:
        from conveyor.samplers import GroupedBatchSampler

        return GroupedBatchSampler, "conveyor.samplers.GroupedBatchSampler (same batches)"
    sys.path.insert(0, str(Path(vision).expanduser() / "references" / "detection"))
    from group_by_aspect_ratio import GroupedBatchSampler  # noqa: E402

    return GroupedBatchSampler, f"{vision}/references/detection/group_by_aspect_ratio.py"


def make_loaders(args, root: Path) -> dict:
    import conveyor
    from conveyor import datasets
    from conveyor.samplers import GroupedBatchSampler, aspect_ratio_groups, aspect_ratios

    reference_sampler, sampler_source = torchvision_grouped_sampler(args.vision)
    args.sampler_source = sampler_source
    theirs = torchvision.datasets.wrap_dataset_for_transforms_v2(
        torchvision.datasets.VOCDetection(root, image_set="trainval", transforms=hflip_preset()),
        target_keys=("boxes", "labels"),
    )
    ours = datasets.VOCDetection(
        root, image_set="trainval", transforms=hflip_preset(), target_format="boxes"
    )
    # the reference computes groups by opening every image (create_aspect_ratio_groups); the
    # same ids are used here so that only the loaders differ
    groups = aspect_ratio_groups(aspect_ratios(ours), args.group_factor)
    b, w = args.batch_size, args.workers
    common = dict(num_workers=w, collate_fn=collate_fn)
    return {
        "torch": torch.utils.data.DataLoader(
            theirs,
            batch_sampler=reference_sampler(RandomSampler(theirs), groups, b),
            persistent_workers=w > 0,
            **common,
        ),
        "conveyor grouped": conveyor.DataLoader(
            ours,
            batch_sampler=GroupedBatchSampler.from_dataset(ours, b, args.group_factor),
            **common,
        ),
        "conveyor shuffle=True": conveyor.DataLoader(ours, batch_size=b, shuffle=True, **common),
        "conveyor batch_sampler": conveyor.DataLoader(
            ours,
            batch_sampler=BatchSampler(
                RandomSampler(ours, generator=torch.Generator().manual_seed(0)), b, False
            ),
            **common,
        ),
        "conveyor grouped padded": conveyor.DataLoader(
            ours,
            batch_sampler=GroupedBatchSampler.from_dataset(ours, b, args.group_factor),
            pad_to_multiple=32,
            **common,
        ),
        "conveyor shuffle=True padded": conveyor.DataLoader(
            ours, batch_size=b, shuffle=True, pad_to_multiple=32, **common
        ),
    }


def padded_pixels(batch_images, divisible: int = 32) -> tuple[int, int]:
    """(image pixels, pixels of the padded batch) when the batch is padded to its largest
    height and width rounded up to ``divisible``, as torchvision detectors' ``batch_images``
    pads it (``size_divisible=32``)."""
    heights = [int(image.shape[-2]) for image in batch_images]
    widths = [int(image.shape[-1]) for image in batch_images]
    height = -(-max(heights) // divisible) * divisible
    width = -(-max(widths) // divisible) * divisible
    return sum(h * w for h, w in zip(heights, widths)), len(batch_images) * height * width


def epoch(loader) -> tuple[int, float, float, float]:
    """Images, seconds, padding waste (share of padded-batch pixels that are padding) and CPU
    seconds of the process tree."""
    cpu_started = tree_cpu_seconds(os.getpid())
    started = time.perf_counter()
    images, real, padded = 0, 0, 0
    for batch_images, targets in loader:
        if hasattr(batch_images, "image_sizes"):  # pad_to_multiple: an ImageList
            sizes = batch_images.image_sizes
            batch, _, height, width = batch_images.tensors.shape
            batch_real, batch_padded = sum(h * w for h, w in sizes), batch * height * width
        else:
            batch_real, batch_padded = padded_pixels(batch_images)
        images += len(targets)
        real, padded = real + batch_real, padded + batch_padded
    seconds = time.perf_counter() - started
    cpu = tree_cpu_seconds(os.getpid()) - cpu_started
    measured = 1.0 - real / padded if padded else 0.0
    stats = getattr(loader, "stats", None)
    if stats is not None and stats.padding_fraction:  # the loader's own count of its padding
        if abs(stats.padding_fraction - measured) > 1e-9:
            raise RuntimeError(
                f"loader.stats.padding_fraction {stats.padding_fraction} != measured {measured}"
            )
        return images, seconds, stats.padding_fraction, cpu
    return images, seconds, measured, cpu


def main(argv=None) -> int:
    args = parse_args(argv)
    os.nice(args.nice)
    root = mixed_aspect_tree(args.data_dir / f"mixed-{args.images}", args.images)
    loaders = make_loaders(args, root)
    for loader in loaders.values():
        epoch(loader)  # warm-up: worker start, engine creation, page cache
    paths = {
        name: getattr(getattr(loader, "stats", None), "path", "torch")
        for name, loader in loaders.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    cpu_ms: dict[str, list[float]] = {name: [] for name in loaders}
    waste: dict[str, float] = {}
    for round_index in range(args.rounds):
        names = list(loaders) if round_index % 2 == 0 else list(reversed(loaders))
        for name in names:
            images, seconds, waste[name], cpu = epoch(loaders[name])
            rates[name].append(images / seconds)
            cpu_ms[name].append(1000.0 * cpu / images)
            print(
                f"[round {round_index + 1}] {name:28s} {images / seconds:8.1f} img/s "
                f"{cpu_ms[name][-1]:6.2f} CPU ms/img",
                flush=True,
            )
    median = {name: statistics.median(values) for name, values in rates.items()}
    pairs = {  # ratio: (row, baseline row)
        "grouped vs torch (target >= 4)": ("conveyor grouped", "torch"),
        "batch_sampler vs shuffle=True (target >= 0.9)": (
            "conveyor batch_sampler",
            "conveyor shuffle=True",
        ),
        "grouped padded vs torch": ("conveyor grouped padded", "torch"),
        "grouped padded vs grouped unpadded": ("conveyor grouped padded", "conveyor grouped"),
    }
    # each round's ratio (both rows under that round's load), then the median over rounds
    ratios = {
        label: statistics.median(a / b for a, b in zip(rates[row], rates[base]))
        for label, (row, base) in pairs.items()
    }
    # the same from CPU time per image (baseline's / row's: > 1 when the row does less work)
    cpu_ratios = {
        label: statistics.median(cpu_ms[base]) / statistics.median(cpu_ms[row])
        for label, (row, base) in pairs.items()
    }
    report = {
        "script": "benchmarks/bench_samplers.py",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "settings": {
            "images": args.images,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "rounds": args.rounds,
            "group_factor": args.group_factor,
            "torch_sampler": args.sampler_source,
            "sizes": SIZES,
            "ratios": "median over rounds of each round's ratio of images/s",
            "cpu_ratios": "ratio of median CPU ms per image (process tree), baseline / row",
        },
        "results": [
            {
                "label": name,
                "images_per_s": median[name],
                "runs": rates[name],
                "cpu_ms_per_image": statistics.median(cpu_ms[name]),
                "cpu_ms_runs": cpu_ms[name],
                "path": paths[name],
                "padding_waste": waste[name],
                "padding_waste_source": (
                    "loader.stats.padding_fraction" if name.endswith("padded") else "measured"
                ),
            }
            for name in loaders
        ],
        "ratios": ratios,
        "cpu_ratios": cpu_ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for label, value in ratios.items():
        print(f"{label}: {value:.2f}x (CPU per image: {cpu_ratios[label]:.2f}x)")
    print(
        "padding waste (batch padded to its max, multiple of 32): "
        + ", ".join(f"{name} {share:.1%}" for name, share in waste.items())
    )
    print(f"paths: {paths}")
    print(f"results: {args.out}")
    if not args.no_plot:
        from plot import plot_results

        plot_results(
            report,
            args.out.with_suffix(".png"),
            value_key="images_per_s",
            title=f"detection reference config, batch {args.batch_size}, {args.workers} workers",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
