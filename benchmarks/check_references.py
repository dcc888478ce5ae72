#!/usr/bin/env python3
"""torchvision's own training references run on conveyor: a documented end-to-end check.

Public code no one here wrote, run side by side with torch's DataLoader on generated VOC trees:

1. ``segmentation``: ``references/segmentation/train.py --dataset voc`` (lraspp_mobilenet_v3_large,
   CPU) exactly as it is, and a copy with **only two references swapped**:
   ``torch.utils.data.DataLoader(`` -> ``conveyor.DataLoader(`` and
   ``torchvision.datasets.VOCSegmentation(`` -> ``conveyor.datasets.VOCSegmentation(`` (plus the
   ``import conveyor.datasets`` line). The diff is printed.
2. ``detection``: a training loop made of the detection reference's parts: ``presets.
   DetectionPresetTrain(data_augmentation="hflip")`` (v2), ``group_by_aspect_ratio.
   GroupedBatchSampler`` over ``RandomSampler`` with ``create_aspect_ratio_groups(k=3)`` groups,
   ``utils.collate_fn``, and ``fasterrcnn_mobilenet_v3_large_320_fpn`` (no weights) trained with
   SGD. torch: torchvision's ``VOCDetection`` wrapped for v2; conveyor: ``conveyor.datasets.
   VOCDetection(target_format="boxes")`` with torchvision's very ``GroupedBatchSampler`` object
   (its group ids from ``conveyor.samplers.aspect_ratio_groups``: no image opened).

For each, both runs must train (finite loss), the conveyor one must run fully natively (its
loaders' ``stats.path`` is ``"native"`` and the loader warned of no transform left to Python:
the planner sees through the presets and recognises the segmentation reference's own transforms
by their exact source), and
the training iterations per second (after the first) are compared: ``--repeats`` runs per loader,
alternating which goes first, median. Each run is a separate process, so on a busy host the
ratio moves with the load: read it from a quiet machine. The
reference code is read from a directory holding torchvision's ``references/`` (a pytorch/vision
checkout, or a copy of its ``references/segmentation`` and ``references/detection``) given on
the command line; nothing of it is copied into this repository. Writes
``results/check_references.json``::

    git clone --depth 1 https://github.com/pytorch/vision ~/src/vision
    nice .venv/bin/python benchmarks/check_references.py ~/src/vision            # ~10 minutes
    nice .venv/bin/python benchmarks/check_references.py ~/src/vision --only detection \\
        --images 40 --iterations 6                                                # smoke run
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# the swap a user makes in references/segmentation/train.py, nothing else
SEGMENTATION_SWAPS = [
    ("torch.utils.data.DataLoader(", "conveyor.DataLoader("),
    ("torchvision.datasets.VOCSegmentation(", "conveyor.datasets.VOCSegmentation("),
]

# Runs a script as __main__ after wrapping the reference's MetricLogger.log_every, which both
# loops iterate through, to time the training iterations (the header starts with "Epoch"), and
# conveyor.DataLoader.__iter__ to report which path each epoch took. Prints one RESULT line.
RUNNER = textwrap.dedent(
    """
    import json, runpy, sys, time
    sys.path.insert(0, sys.argv[1])
    import utils
    timing = {"iterations": 0, "seconds": 0.0, "losses": []}  # iterations after the first
    original = utils.MetricLogger.log_every

    def timed(self, iterable, print_freq, header=None):
        # a step ends when the loop asks for the next batch (or leaves the loop); the first
        # step (worker start-up, first allocations) is left out of the rate
        if not str(header).startswith("Epoch"):
            yield from original(self, iterable, print_freq, header)
            return
        started = None
        pending = False
        def close_step():
            nonlocal started
            now = time.perf_counter()
            if started is not None:
                timing["iterations"] += 1
                timing["seconds"] += now - started
            if "loss" in self.meters:
                timing["losses"].append(self.meters["loss"].value)
            started = now
        try:
            for item in original(self, iterable, print_freq, header):
                if pending:
                    close_step()
                pending = True
                yield item
        finally:
            if pending:
                close_step()

    utils.MetricLogger.log_every = timed

    try:
        import pycocotools  # noqa: F401
    except ImportError:
        # segmentation's coco_utils imports it at module level; --dataset voc never calls it.
        # Without it installed, any use fails loudly instead of being imitated.
        import types

        def missing(name):
            if name.startswith("__"):  # introspection (inspect, pickle) probes dunders
                raise AttributeError(name)
            raise RuntimeError(f"pycocotools is not installed (needed for {name})")

        package = types.ModuleType("pycocotools")
        package.mask = types.ModuleType("pycocotools.mask")
        package.mask.__getattr__ = missing
        sys.modules["pycocotools"], sys.modules["pycocotools.mask"] = package, package.mask
    paths = []
    try:
        import conveyor
        iterate = conveyor.DataLoader.__iter__

        def recording(self):
            iterator = iterate(self)
            paths.append(self.stats.path)
            return iterator

        conveyor.DataLoader.__iter__ = recording
    except ImportError:
        pass
    sys.argv = sys.argv[2:]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        timing["conveyor_paths"] = paths
        print("RESULT " + json.dumps(timing), flush=True)
    """
)

# The detection loop: the reference's presets, sampler, collate and a torchvision detector.
DETECTION_LOOP = textwrap.dedent(
    """
    import argparse, sys, torch, torchvision
    import presets, utils
    from group_by_aspect_ratio import GroupedBatchSampler, create_aspect_ratio_groups

    parser = argparse.ArgumentParser()
    parser.add_argument("--data-path"); parser.add_argument("--loader")
    parser.add_argument("-b", type=int); parser.add_argument("-j", type=int)
    parser.add_argument("--iterations", type=int)
    args = parser.parse_args()
    torch.manual_seed(0)
    preset = presets.DetectionPresetTrain(data_augmentation="hflip", backend="tensor", use_v2=True)
    if args.loader == "conveyor":
        import conveyor, conveyor.datasets
        from conveyor.samplers import aspect_ratio_groups
        dataset = conveyor.datasets.VOCDetection(
            args.data_path, image_set="trainval", transforms=preset, target_format="boxes"
        )
        group_ids = aspect_ratio_groups(dataset, 3)
        DataLoader = conveyor.DataLoader
    else:
        plain = torchvision.datasets.VOCDetection(args.data_path, image_set="trainval")
        group_ids = create_aspect_ratio_groups(plain, k=3)
        dataset = torchvision.datasets.wrap_dataset_for_transforms_v2(
            torchvision.datasets.VOCDetection(args.data_path, image_set="trainval", transforms=preset),
            target_keys=("boxes", "labels"),
        )
        DataLoader = torch.utils.data.DataLoader
    batch_sampler = GroupedBatchSampler(torch.utils.data.RandomSampler(dataset), group_ids, args.b)
    loader = DataLoader(
        dataset, batch_sampler=batch_sampler, num_workers=args.j, collate_fn=utils.collate_fn
    )
    model = torchvision.models.get_model(
        "fasterrcnn_mobilenet_v3_large_320_fpn", weights=None, weights_backbone=None,
        num_classes=21,
    )
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9, weight_decay=1e-4)
    logger = utils.MetricLogger(delimiter="  ")
    done = 0
    while done < args.iterations:
        for images, targets in logger.log_every(loader, 10 ** 6, "Epoch: [0]"):
            losses = sum(model(list(images), list(targets)).values())
            optimizer.zero_grad()
            losses.backward()
            optimizer.step()
            logger.update(loss=losses.item())
            done += 1
            if done == args.iterations:
                break
    """
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vision", type=Path, help="a pytorch/vision checkout")
    parser.add_argument("--only", choices=("segmentation", "detection"))
    parser.add_argument("--images", type=int, default=64, help="images in each generated tree")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=12, help="detection iterations")
    parser.add_argument("--repeats", type=int, default=2, help="runs per loader, alternating")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/conveyor-check-references"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "check_references.json")
    return parser.parse_args(argv)


def environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "python")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    return env


def run(script_dir: Path, argv: list[str], log: Path) -> dict:
    """Run ``argv`` (a script in ``script_dir`` and its arguments) under the timing runner."""
    runner = script_dir / "_conveyor_check_runner.py"
    runner.write_text(RUNNER)
    command = [sys.executable, str(runner), str(script_dir)] + argv
    completed = subprocess.run(
        command, cwd=script_dir, env=environment(), capture_output=True, text=True
    )
    log.write_text(completed.stdout + completed.stderr)
    result = None
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    if completed.returncode != 0 or result is None:
        tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-25:])
        raise RuntimeError(f"{' '.join(command)} failed ({completed.returncode}):\n{tail}")
    iterations, seconds = result["iterations"], result["seconds"]
    result["iterations_per_s"] = iterations / seconds if seconds else None
    result["log"] = str(log)
    return result


def check_segmentation(args, work: Path) -> dict:
    from conveyor.datasets import make_synthetic_voc

    data = work / "seg-data"
    if not (data / "VOCdevkit").is_dir():
        make_synthetic_voc(data, num_images=args.images, image_size=(500, 375), seed=0)
    reference = args.vision / "references" / "segmentation"
    commands, diff, swaps = {}, "", []
    for loader in ("torch", "conveyor"):
        folder = work / f"segmentation-{loader}"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(reference, folder)
        if loader == "conveyor":
            original = (folder / "train.py").read_text()
            swapped = original
            for old, new in SEGMENTATION_SWAPS:
                if swapped.count(old) < 1:
                    raise RuntimeError(f"{reference}/train.py has no {old!r}: another version?")
                swaps.append({"old": old, "new": new, "count": swapped.count(old)})
                swapped = swapped.replace(old, new)
            swapped = "import conveyor\nimport conveyor.datasets\n" + swapped
            (folder / "train.py").write_text(swapped)
            diff = "".join(
                difflib.unified_diff(
                    original.splitlines(True), swapped.splitlines(True), "train.py", "train.py"
                )
            )
        argv = [
            "train.py",
            "--dataset",
            "voc",
            "--data-path",
            str(data),
            "--model",
            "lraspp_mobilenet_v3_large",
            "--device",
            "cpu",
            "-b",
            str(args.batch_size),
            "-j",
            str(args.workers),
            "--epochs",
            "1",
            "--print-freq",
            "1000",
            "--output-dir",
            str(folder / "out"),
        ]
        commands[loader] = (folder, argv)
    print(diff)  # printed, not stored: the results stay free of the reference's code
    return {"runs": run_rounds(args, "segmentation", commands, work), "swaps": swaps}


def mixed_tree(args, work: Path) -> Path:
    sys.path.insert(0, str(HERE))
    from bench_samplers import mixed_aspect_tree

    return mixed_aspect_tree(work / "det-data", args.images)


def check_detection(args, work: Path) -> dict:
    data = mixed_tree(args, work)
    folder = work / "detection"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(args.vision / "references" / "detection", folder)
    (folder / "_conveyor_detection_loop.py").write_text(DETECTION_LOOP)
    commands = {}
    for loader in ("torch", "conveyor"):
        argv = [
            "_conveyor_detection_loop.py",
            "--data-path",
            str(data),
            "--loader",
            loader,
            "-b",
            str(args.batch_size),
            "-j",
            str(args.workers),
            "--iterations",
            str(args.iterations),
        ]
        commands[loader] = (folder, argv)
    return {"runs": run_rounds(args, "detection", commands, work)}


def run_rounds(args, name: str, commands: dict, work: Path) -> dict:
    """Each loader's run ``args.repeats`` times, alternating which goes first (the host's load
    drifts); a loader's rate is the median over its runs."""
    runs: dict = {loader: [] for loader in commands}
    for round_index in range(args.repeats):
        order = list(commands) if round_index % 2 == 0 else list(reversed(commands))
        for loader in order:
            folder, argv = commands[loader]
            log = work / f"{name}-{loader}-{round_index}.log"
            runs[loader].append(run(folder, argv, log))
            rate = runs[loader][-1]["iterations_per_s"]
            print(f"[round {round_index + 1}] {name} {loader:9s} {rate:.3f} it/s", flush=True)
    return {
        loader: {
            "iterations_per_s": statistics.median(r["iterations_per_s"] for r in results),
            "rounds": results,
            "losses": results[0]["losses"],
            "conveyor_paths": [p for r in results for p in r["conveyor_paths"]],
            "logs": [r["log"] for r in results],
        }
        for loader, results in runs.items()
    }


def verdict(check: dict) -> dict:
    torch_run, conveyor_run = check["runs"]["torch"], check["runs"]["conveyor"]
    losses = torch_run["losses"] + conveyor_run["losses"]
    return {
        "trains": bool(losses) and all(loss == loss and abs(loss) < 1e6 for loss in losses),
        "native": bool(conveyor_run["conveyor_paths"])
        and set(conveyor_run["conveyor_paths"]) == {"native"},
        # what the loader said it leaves to Python (its one warning per reason)
        "python_tails": [
            line.split("UserWarning: ", 1)[1]
            for log in conveyor_run["logs"][:1]
            for line in Path(log).read_text().splitlines()
            if "UserWarning: conveyor.DataLoader: " in line
        ],
        "speedup": conveyor_run["iterations_per_s"] / torch_run["iterations_per_s"],
    }


def passed(verdict_: dict) -> bool:
    """Trains, natively, with nothing of the pipeline left to Python."""
    return verdict_["trains"] and verdict_["native"] and not verdict_["python_tails"]


def main(argv=None) -> int:
    args = parse_args(argv)
    args.vision = args.vision.expanduser().resolve()
    if not (args.vision / "references").is_dir():
        raise SystemExit(f"{args.vision} is not a pytorch/vision checkout (no references/)")
    args.data_dir.mkdir(parents=True, exist_ok=True)  # trees are generated once, then reused
    report = {
        "script": "benchmarks/check_references.py",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "vision": str(args.vision),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
    }
    if args.only in (None, "segmentation"):
        report["segmentation"] = check_segmentation(args, args.data_dir)
        report["segmentation"]["verdict"] = verdict(report["segmentation"])
    if args.only in (None, "detection"):
        report["detection"] = check_detection(args, args.data_dir)
        report["detection"]["verdict"] = verdict(report["detection"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    failed = []
    for name in ("segmentation", "detection"):
        if name in report:
            print(f"{name}: {report[name]['verdict']}")
            if not passed(report[name]["verdict"]):
                failed.append(name)
    print(f"results: {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
