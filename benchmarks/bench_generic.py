"""torch's DataLoader vs conveyor.DataLoader on code conveyor does not recognise (issue 11).

Side by side in one run, same ``num_workers``, same batch size, same data, alternating runs:

- ``user_dataset``: a user's own ``Dataset`` (PIL + ElementTree + torchvision v2 transforms,
  ``tuple(zip(*batch))`` collate), as a user would write it;
- ``voc_detection``: ``torchvision.datasets.VOCDetection`` wrapped for v2 transforms;
- ``user_collate``: torchvision's ``VOCDetection`` for torch, ``conveyor.datasets.VOCDetection``
  (the one import swapped) for conveyor, same v2 transforms, the user's own
  ``(torch.stack(images), list(targets))`` collate;
- ``native_tail``: the same with a Python ``v2.Lambda`` at the end of the transforms (conveyor:
  the native prefix, then the lambda; ``auto`` runs both in worker processes);
- ``cpu_python``: a CPU-heavy pure-Python ``__getitem__`` (process workers must match torch);
- ``step_time``: the model's own training step (a small CNN, forward + backward + SGD) timed
  while a loader feeds it in lockstep, against the same step with no loader alive. It keeps
  the intra-op fix honest: worker threads that run torch ops with full OpenMP teams slow the
  step down (the row "threads, full intra-op teams" shows that mechanism with the fix undone).

conveyor runs with its default (``worker_mode="auto"``: processes here, since these pipelines
are Python) and with ``worker_mode="thread"``. Each loader row is one full epoch including
worker start-up, repeated ``--repeats`` times (median). The machine is shared: compare ratios,
not absolute numbers; the JSON records the load average.

    nice -n 10 .venv/bin/python benchmarks/bench_generic.py --images 96 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import torch  # noqa: E402
import torch.utils.data as tud  # noqa: E402
import torchvision  # noqa: E402
from bench_loader import machine_info as loader_machine_info  # noqa: E402
from PIL import Image  # noqa: E402
from source_tree import SOURCE_TREE  # noqa: E402, F401  (this checkout's build first)
from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402
from voc_tree import CLASSES, ensure_tree  # noqa: E402

import conveyor  # noqa: E402

CASES = ("user_dataset", "voc_detection", "user_collate", "native_tail", "cpu_python", "step_time")


# ----------------------------------------------------------------------- the user's own code


def user_transforms() -> v2.Compose:
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomHorizontalFlip(0.5),
            v2.Resize((320, 320), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )


class UserVOCDataset(tud.Dataset):
    """What a user writes for a VOC folder: PIL, ElementTree, v2 transforms on (image, target)."""

    def __init__(self, voc_dir: Path, transforms: Callable) -> None:
        self.voc_dir = Path(voc_dir)
        ids = (self.voc_dir / "ImageSets" / "Main" / "trainval.txt").read_text().split()
        self.ids = ids
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int):
        image_id = self.ids[index]
        image = Image.open(self.voc_dir / "JPEGImages" / f"{image_id}.jpg").convert("RGB")
        root = ET.parse(self.voc_dir / "Annotations" / f"{image_id}.xml").getroot()
        boxes, labels = [], []
        for obj in root.iter("object"):
            box = obj.find("bndbox")
            boxes.append([float(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")])
            labels.append(CLASSES.index(obj.find("name").text))
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.tensor(boxes).reshape(-1, 4), format="XYXY", canvas_size=image.size[::-1]
            ),
            "labels": torch.tensor(labels, dtype=torch.int64),
        }
        return self.transforms(image, target)


def tuple_collate(batch):
    return tuple(zip(*batch))


def stack_collate(batch):
    """A user's own collate: stacked images, a list of targets."""
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def identity(image):
    return image


def tail_transforms() -> v2.Compose:
    """The user's transforms with one step no loader recognises (a Python lambda) at the end."""
    return v2.Compose(list(user_transforms().transforms) + [v2.Lambda(identity)])


class PythonHeavyDataset(tud.Dataset):
    """A ``__getitem__`` that is all interpreter work (no GIL release): a small text parser."""

    def __init__(self, length: int, work: int) -> None:
        self.length = length
        self.work = work

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        fields = [f"{index * 31 + i}:{(i * 7) % 13}" for i in range(self.work)]
        total = 0
        for field in fields:
            key, value = field.split(":")
            total += (int(key) * int(value)) % 97
        return torch.tensor([total, index])


# -------------------------------------------------------------------------------- measuring


def epoch_rate(make_loader: Callable[[], Any], samples: int) -> float:
    """Images per second of one full epoch of a fresh loader (start-up included)."""
    started = time.perf_counter()
    loader = make_loader()
    count = 0
    for batch in loader:
        if isinstance(batch, torch.Tensor):
            count += int(batch.shape[0])
        else:  # (images, targets) from tuple(zip(*batch))
            count += len(batch[0])
    elapsed = time.perf_counter() - started
    if count != samples:
        raise RuntimeError(f"loader delivered {count} samples, expected {samples}")
    del loader
    return samples / elapsed


def compare(
    case: str, loaders: Dict[str, Callable[[], Any]], samples: int, repeats: int
) -> List[dict]:
    """Alternates the loaders ``repeats`` times; median images/s and ratio to torch."""
    runs: Dict[str, List[float]] = {name: [] for name in loaders}
    for make in loaders.values():  # warm-up: imports, page cache, first fork
        epoch_rate(make, samples)
    for _ in range(repeats):
        for name, make in loaders.items():
            runs[name].append(epoch_rate(make, samples))
    baseline = statistics.median(runs["torch DataLoader"])
    rows = []
    for name, values in runs.items():
        median = statistics.median(values)
        rows.append(
            {
                "case": case,
                "loader": name,
                "label": f"{case}\n{name}",
                "images_per_s": round(median, 1),
                "runs": [round(v, 1) for v in values],
                "ratio_vs_torch": round(median / baseline, 3),
            }
        )
        print(f"  {case:14s} {name:34s} {median:8.1f} img/s  x{median / baseline:.2f}", flush=True)
    return rows


def loader_rows(case: str, dataset, args, collate=None, conveyor_dataset=None) -> List[dict]:
    """torch's DataLoader on ``dataset``; conveyor's on ``conveyor_dataset`` when given (the
    same data and transforms through conveyor's dataset: the one import a user swaps)."""
    common = dict(batch_size=args.batch_size, shuffle=True, num_workers=args.workers)
    if collate is not None:
        common["collate_fn"] = collate
    ours = dataset if conveyor_dataset is None else conveyor_dataset
    loaders = {
        "torch DataLoader": lambda: tud.DataLoader(dataset, **common),
        "conveyor (default: auto)": lambda: conveyor.DataLoader(ours, **common),
        "conveyor worker_mode=thread": lambda: conveyor.DataLoader(
            ours, worker_mode="thread", **common
        ),
    }
    return compare(case, loaders, len(dataset), args.repeats)


# ------------------------------------------------------------------------ training step time


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(64, 64, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
        )
        self.head = torch.nn.Linear(64, len(CLASSES))

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def process_threads() -> int:
    """OS threads of this process (OpenMP teams of worker threads show up here)."""
    return len(os.listdir("/proc/self/task"))


def step_times(make_loader, model, optimizer, steps: int) -> tuple:
    """Seconds of each training step on a fixed batch, with a loader (if any) pulled between
    steps (untimed) so that its workers keep working while the step runs; and the process's
    thread count at the end."""
    loss_fn = torch.nn.CrossEntropyLoss()
    iterator = iter(make_loader()) if make_loader else None
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(16, 3, 160, 160, generator=generator)
    labels = torch.randint(0, len(CLASSES), (16,), generator=generator)
    times = []
    for _ in range(steps):
        if iterator is not None:
            try:
                next(iterator)
            except StopIteration:
                iterator = iter(make_loader())
                next(iterator)
        started = time.perf_counter()
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return times, process_threads()


def step_time_rows(dataset, args) -> List[dict]:
    from conveyor.loader import worker_threads

    common = dict(batch_size=16, shuffle=True, num_workers=args.workers, collate_fn=tuple_collate)
    fix = worker_threads.use_one_intra_op_thread

    def full_teams():
        worker_threads.use_one_intra_op_thread = lambda: False  # undo the fix (mechanism row)
        return conveyor.DataLoader(dataset, worker_mode="thread", **common)

    setups = {
        "no loader (batches made beforehand)": None,
        "torch DataLoader (processes)": lambda: tud.DataLoader(dataset, **common),
        "conveyor (default auto: processes)": lambda: conveyor.DataLoader(dataset, **common),
        "conveyor worker_mode=thread": lambda: conveyor.DataLoader(
            dataset, worker_mode="thread", **common
        ),
        "conveyor threads, full intra-op teams (fix undone)": full_teams,
    }
    torch.manual_seed(0)
    model = SmallCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    medians: Dict[str, List[float]] = {name: [] for name in setups}
    threads: Dict[str, int] = {}
    try:
        step_times(None, model, optimizer, 3)  # warm-up
        for _ in range(args.repeats):
            for name, make in setups.items():
                times, threads[name] = step_times(make, model, optimizer, args.steps)
                worker_threads.use_one_intra_op_thread = fix
                medians[name].append(statistics.median(times[1:]))
    finally:
        worker_threads.use_one_intra_op_thread = fix
    base = statistics.median(medians["no loader (batches made beforehand)"])
    rows = []
    for name, values in medians.items():
        median = statistics.median(values)
        rows.append(
            {
                "case": "step_time",
                "loader": name,
                "label": f"step_time\n{name}",
                "step_s": round(median, 4),
                "runs": [round(v, 4) for v in values],
                "slowdown_vs_no_loader": round(median / base, 3),
                "process_threads": threads[name],
            }
        )
        print(
            f"  step_time      {name:52s} {median * 1000:7.1f} ms  x{median / base:.2f}  "
            f"{threads[name]} threads"
        )
    return rows


# ---------------------------------------------------------------------------------------- main


def machine_info() -> dict:
    return {
        **loader_machine_info(),  # CPU model, cores, Python, load at the start
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "torch_threads": torch.get_num_threads(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", ""),
    }


def markdown_table(rows: List[dict]) -> str:
    lines = [
        "| case | loader | img/s (or step ms) | vs torch (or vs no loader) | threads |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if "images_per_s" in row:
            lines.append(
                f"| {row['case']} | {row['loader']} | {row['images_per_s']:.0f} | "
                f"{row['ratio_vs_torch']:.2f}x | |"
            )
        else:
            lines.append(
                f"| {row['case']} | {row['loader']} | {row['step_s'] * 1000:.0f} ms | "
                f"{row['slowdown_vs_no_loader']:.2f}x | {row['process_threads']} |"
            )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96, help="images in the VOC-like tree")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="training steps per step_time run")
    parser.add_argument("--python-work", type=int, default=3000, help="cpu_python: fields/sample")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--data", type=Path, default=HERE / "data" / "voc_generic")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_generic.json")
    parser.add_argument("--no-plot", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        raise SystemExit(f"unknown cases {sorted(unknown)}; choose from {CASES}")
    tree = ensure_tree(args.data, args.images)
    voc_dir = Path(tree["root"]) / "VOCdevkit" / "VOC2012"
    info = {"machine": machine_info(), "tree": tree, "config": vars(args) | {"cases": cases}}
    info["config"] = {k: str(v) if isinstance(v, Path) else v for k, v in info["config"].items()}
    rows: List[dict] = []
    print(f"bench_generic: {args.images} images, {args.workers} workers, batch {args.batch_size}")
    user_dataset = UserVOCDataset(voc_dir, user_transforms())
    if "user_dataset" in cases:
        rows += loader_rows("user_dataset", user_dataset, args, tuple_collate)
    if "voc_detection" in cases:
        reference = torchvision.datasets.wrap_dataset_for_transforms_v2(
            torchvision.datasets.VOCDetection(
                args.data, year="2012", image_set="trainval", transforms=user_transforms()
            )
        )
        rows += loader_rows("voc_detection", reference, args, tuple_collate)
    for case, transforms, collate in (
        ("user_collate", user_transforms, stack_collate),
        ("native_tail", tail_transforms, tuple_collate),
    ):
        if case not in cases:
            continue
        theirs = torchvision.datasets.wrap_dataset_for_transforms_v2(
            torchvision.datasets.VOCDetection(
                args.data, year="2012", image_set="trainval", transforms=transforms()
            )
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # native_tail: the Lambda's one warning
            ours = conveyor.datasets.VOCDetection(
                args.data,
                year="2012",
                image_set="trainval",
                transforms=transforms(),
                target_format="boxes",
            )
            rows += loader_rows(case, theirs, args, collate, conveyor_dataset=ours)
    if "cpu_python" in cases:
        heavy = PythonHeavyDataset(args.images * 2, args.python_work)
        rows += loader_rows("cpu_python", heavy, args)
    if "step_time" in cases:
        rows += step_time_rows(user_dataset, args)
    info["machine"]["loadavg_end"] = os.getloadavg()
    info["results"] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(info, indent=2))
    print(markdown_table(rows))
    if not args.no_plot:
        from plot import plot_results

        loader_plot = [r for r in rows if "ratio_vs_torch" in r]
        if loader_plot:
            plot_results(
                loader_plot,
                args.out.with_suffix(".png"),
                value_key="ratio_vs_torch",
                value_format="%.2f",
                title=f"conveyor vs torch DataLoader, same code, {args.workers} workers",
                ylabel="throughput / torch DataLoader",
            )
        step_plot = [r for r in rows if "slowdown_vs_no_loader" in r]
        if step_plot:
            plot_results(
                step_plot,
                args.out.with_name(args.out.stem + "_step_time.png"),
                value_key="slowdown_vs_no_loader",
                value_format="%.2f",
                title="training step time with a loader alive (1.00 = no loader)",
                ylabel="step time / step time without loader",
            )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
