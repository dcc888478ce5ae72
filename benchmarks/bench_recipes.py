#!/usr/bin/env python3
"""Recipe benchmark: torchvision's reference training recipes, torch's DataLoader vs conveyor.

Side by side in one run, on the same cached VOC-like tree and the same cores: the four recipes
of issue 10 (detection "ssd", detection "hflip" (Faster R-CNN, variable sizes, lists),
ScaleJitter + RandomCrop(pad_if_needed) + flip + ColorJitter + Normalize + Sanitize,
segmentation train), the detection reference's default configuration ("reference": its
``GroupedBatchSampler`` with ``--aspect-ratio-group-factor 3``, the "hflip" preset, variable
sizes; conveyor pads each batch with ``pad_to_multiple=32``, torch's row is the reference's own
loop: ``tuple(zip(*batch))`` lists, padded later by the model) and the issue-4 recipe (Resize 512
+ flip + Normalize) for scale. Both
loaders get torchvision's own v2 transform classes, unchanged: torch's DataLoader with
``num_workers`` worker processes over torchvision's datasets wrapped with
``wrap_dataset_for_transforms_v2``; conveyor's DataLoader with ``num_workers`` native threads
over ``conveyor.datasets`` with ``target_format="boxes"`` / ``"mask"``. Each measurement runs in
a fresh subprocess under ``nice``. Every figure is also given as a fraction of the decode-only
limit (libjpeg-turbo decoding the same files with as many threads, nothing else).

DALI on the CPU is measured where it has the ops (``baselines/dali_recipes.py``, run with the
interpreter of ``benchmarks/.venv-dali`` that ``setup_peers.sh`` makes): images only, since DALI
has no VOC XML reader; the table's notes say, per recipe, what DALI lacks or does differently.
Without that venv the DALI column says so and the rest still runs.

    .venv/bin/python benchmarks/bench_recipes.py              # about 3 minutes
    .venv/bin/python benchmarks/bench_recipes.py --quick      # about 1.5 minutes
    .venv/bin/python benchmarks/bench_recipes.py --readme     # also refresh benchmarks/README.md

Writes ``benchmarks/results/bench_recipes.json``, ``.md`` (the table) and ``.png`` (the plot).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "baselines"))
from harness import Unavailable  # noqa: E402
from source_tree import SOURCE_TREE  # noqa: E402  (this checkout's build first)

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
RECIPES = {
    "ssd": "detection 'ssd': PhotometricDistort, ZoomOut, IoUCrop, HFlip, Resize 300, "
    "ToDtype, Sanitize",
    "hflip": "detection 'hflip' (Faster R-CNN): HFlip, ToDtype, Sanitize; variable sizes, "
    "lists of images",
    "scale_jitter": "ScaleJitter 512, RandomCrop 512 (pad_if_needed), HFlip, ColorJitter, "
    "ToDtype, Normalize, Sanitize",
    "segmentation": "segmentation train: RandomResize(260, 1040), HFlip, RandomCrop(480, "
    "pad_if_needed, fill Image 0 / Mask 255), ToDtype, Normalize",
    "reference": "detection reference config: GroupedBatchSampler (k=3), 'hflip' preset, "
    "variable sizes; conveyor: padded batches (pad_to_multiple=32), torch: lists",
    "issue4": "issue-4 recipe: Resize 512x512, HFlip, ToDtype, Normalize (stacked batch)",
}
GROUP_FACTOR = 3  # references/detection/train.py --aspect-ratio-group-factor default
LOADERS = ("torch", "conveyor", "dali")
DALI_VENV = HERE / ".venv-dali"
DALI_MISSING = (
    f"not available: {DALI_VENV.relative_to(REPO)} is not installed "
    "(benchmarks/setup_peers.sh installs nvidia-dali-cuda120 there from PyPI)"
)


# ------------------------------------------------------------------------- the recipes


def transforms(recipe: str):
    import torch
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    if recipe == "ssd":
        fill = defaultdict(lambda: 0, {tv_tensors.Image: (123, 117, 104)})
        return v2.Compose(
            [
                v2.ToImage(),
                v2.RandomPhotometricDistort(),
                v2.RandomZoomOut(fill=fill),
                v2.RandomIoUCrop(),
                v2.RandomHorizontalFlip(p=0.5),
                v2.Resize((300, 300)),
                v2.ToDtype(torch.float32, scale=True),
                v2.SanitizeBoundingBoxes(),
            ]
        )
    if recipe in ("hflip", "reference"):
        return v2.Compose(
            [
                v2.ToImage(),
                v2.RandomHorizontalFlip(p=0.5),
                v2.ToDtype(torch.float32, scale=True),
                v2.SanitizeBoundingBoxes(),
            ]
        )
    if recipe == "scale_jitter":
        return v2.Compose(
            [
                v2.ToImage(),
                v2.ScaleJitter((512, 512)),
                v2.RandomCrop(512, pad_if_needed=True),
                v2.RandomHorizontalFlip(),
                v2.ColorJitter(0.4, 0.4, 0.4, 0.1),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(MEAN, STD),
                v2.SanitizeBoundingBoxes(),
            ]
        )
    if recipe == "segmentation":
        return v2.Compose(
            [
                v2.ToImage(),
                v2.RandomResize(260, 1040),
                v2.RandomHorizontalFlip(0.5),
                v2.RandomCrop(
                    480, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: 255}
                ),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(MEAN, STD),
            ]
        )
    if recipe == "issue4":
        return v2.Compose(
            [
                v2.ToImage(),
                v2.Resize((512, 512)),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(MEAN, STD),
            ]
        )
    raise ValueError(recipe)


def reference_collate(batch):
    """references/detection/utils.collate_fn."""
    return tuple(zip(*batch))


def make_loader(loader: str, recipe: str, root: str, workers: int, batch_size: int, seed: int):
    if loader == "dali":  # in DALI's venv: no torch there
        import dali_recipes

        return dali_recipes.make_loader(recipe, root, workers, batch_size, seed)
    import torch

    if recipe == "reference":
        return make_reference_loader(loader, root, workers, batch_size, seed)
    segmentation = recipe == "segmentation"
    tf = transforms(recipe)
    # The same collate function on both sides: torch's default_collate for segmentation,
    # conveyor.collate.detection_collate for detection (stacked images when the recipe fixes
    # the size, else the list that torchvision's tuple(zip(*batch)) gives; a plain function,
    # equally usable with torch's DataLoader). conveyor builds these straight from its batch
    # buffers; any other collate function gets per-sample tensors (see loader/native_path.py).
    from conveyor.collate import detection_collate

    collate = torch.utils.data.default_collate if segmentation else detection_collate
    if loader == "torch":
        import torchvision

        cls = (
            torchvision.datasets.VOCSegmentation
            if segmentation
            else torchvision.datasets.VOCDetection
        )
        dataset = cls(root, year="2012", image_set="trainval", transforms=tf)
        keys = None if segmentation else ("boxes", "labels")
        dataset = torchvision.datasets.wrap_dataset_for_transforms_v2(dataset, target_keys=keys)
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            num_workers=workers,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(seed),
            persistent_workers=workers > 0,
        )
    import conveyor
    from conveyor import datasets

    if segmentation:
        dataset = datasets.VOCSegmentation(
            root, year="2012", image_set="trainval", transforms=tf, target_format="mask"
        )
    else:
        dataset = datasets.VOCDetection(
            root, year="2012", image_set="trainval", transforms=tf, target_format="boxes"
        )
    return conveyor.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate,
        seed=seed,
    )


def make_reference_loader(loader: str, root: str, workers: int, batch_size: int, seed: int):
    """The detection reference's loader (train.py, default flags): GroupedBatchSampler over a
    RandomSampler, groups of create_aspect_ratio_groups(k=3), the "hflip" preset and
    utils.collate_fn. conveyor's GroupedBatchSampler gives torchvision's batches for the same
    base order (tests/test_samplers.py); torchvision ships its class only in references/."""
    import torch
    import torchvision

    from conveyor.samplers import GroupedBatchSampler, aspect_ratio_groups, aspect_ratios

    if loader == "torch":
        voc = torchvision.datasets.VOCDetection(
            root, year="2012", image_set="trainval", transforms=transforms("reference")
        )
        groups = aspect_ratio_groups(aspect_ratios(voc), GROUP_FACTOR)
        dataset = torchvision.datasets.wrap_dataset_for_transforms_v2(
            voc, target_keys=("boxes", "labels")
        )
        sampler = torch.utils.data.RandomSampler(
            dataset, generator=torch.Generator().manual_seed(seed)
        )
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=GroupedBatchSampler(sampler, groups, batch_size),
            num_workers=workers,
            collate_fn=reference_collate,
            persistent_workers=workers > 0,
        )
    import conveyor
    from conveyor import datasets

    dataset = datasets.VOCDetection(
        root,
        year="2012",
        image_set="trainval",
        transforms=transforms("reference"),
        target_format="boxes",
    )
    return conveyor.DataLoader(
        dataset,
        batch_sampler=GroupedBatchSampler.from_dataset(
            dataset, batch_size, GROUP_FACTOR, seed=seed
        ),
        num_workers=workers,
        collate_fn=reference_collate,
        pad_to_multiple=32,
        seed=seed,
    )


def batch_images(batch) -> int:
    images = batch[0]
    if hasattr(images, "image_sizes"):  # a padded batch: torchvision's ImageList
        return len(images.image_sizes)
    return len(images) if isinstance(images, (list, tuple)) else int(images.shape[0])


def dali_batch_images(batch) -> int:
    return len(batch)  # images only: one array [B, C, H, W] or a list of [C, H, W]


def loader_info(loader) -> dict:
    stats = getattr(loader, "stats", None)
    return {"path": getattr(stats, "path", "torch")} if stats is not None else {}


# --------------------------------------------------------------- one measurement (child)


def measure_one(args) -> dict:
    import warnings

    from harness import run_loader

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_loader(
            lambda: make_loader(
                args.loader, args.recipe, args.root, args.workers, args.batch_size, args.seed
            ),
            dali_batch_images if args.loader == "dali" else batch_images,
            args.seconds,
            loader_info=loader_info,
        )
    result["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    if args.loader == "dali":
        import dali_recipes

        result["versions"] = dali_recipes.describe()
    return result


def measure_decode(args) -> dict:
    import decode_limit

    voc = Path(args.root) / "VOCdevkit" / "VOC2012"
    ids = (voc / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    paths = [str(voc / "JPEGImages" / f"{i}.jpg") for i in ids]
    return decode_limit.measure(paths, args.seconds, args.workers)


# ----------------------------------------------------------------------------- parent


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images, 3 s per measurement")
    parser.add_argument("--images", type=int, help="images in the tree (default 500; quick 200)")
    parser.add_argument("--seconds", type=float, help="steady-state seconds (default 8; quick 3)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--loaders", default=",".join(LOADERS), help="torch,conveyor,dali")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_recipes.json")
    parser.add_argument("--readme", action="store_true", help="refresh benchmarks/README.md")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--nice", type=int, default=10)
    # child mode
    parser.add_argument("--one", nargs=2, metavar=("LOADER", "RECIPE"), help=argparse.SUPPRESS)
    parser.add_argument("--decode", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.images = args.images or (200 if args.quick else 500)
    args.seconds = args.seconds or (3.0 if args.quick else 8.0)
    args.recipes = [r for r in args.recipes.split(",") if r]
    args.loaders = [name for name in args.loaders.split(",") if name]
    if [name for name in args.loaders if name not in LOADERS]:
        parser.error(f"--loaders: choose from {list(LOADERS)}")
    unknown = [r for r in args.recipes if r not in RECIPES]
    if unknown:
        parser.error(f"--recipes: unknown {unknown}; choose from {list(RECIPES)}")
    return args


def child(args, extra: list[str], python: str = sys.executable) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if SOURCE_TREE is not None:
        env["PYTHONPATH"] = str(SOURCE_TREE)
    command = [python, __file__, "--root", str(args.root), "--workers", str(args.workers)]
    command += ["--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    command += ["--seconds", str(args.seconds), *extra]
    limit = 180 + 10 * args.seconds
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"no result within {limit:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": "failed", "reason": f"exit {done.returncode}: {tail}"}


def table(results: dict, decode: dict, workers: int) -> str:
    limit = decode.get("limit_ips")
    lines = [
        f"| recipe | torch DataLoader ({workers} workers) | conveyor ({workers} threads) "
        f"| conveyor / torch | DALI-CPU ({workers} threads, images only) | conveyor / DALI "
        "| conveyor CPU ms/img vs torch | conveyor path | fraction of decode-only limit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for recipe, by_loader in results.items():
        t, c = by_loader.get("torch", {}), by_loader.get("conveyor", {})
        d = by_loader.get("dali", {})
        if d.get("status") == "ok":
            dali = f"{d['images_per_s']:.0f} img/s"
            versus = (
                f"{c['images_per_s'] / d['images_per_s']:.1f}x" if c.get("status") == "ok" else ""
            )
        else:
            dali, versus = ("not measured (see below)" if d else "not run"), ""
        if t.get("status") != "ok" or c.get("status") != "ok":
            why = t.get("reason") or c.get("reason") or ("not run" if not t or not c else "failed")
            lines.append(f"| {recipe} | {why} | | | {dali} | {versus} | | | |")
            continue
        ratio = c["images_per_s"] / t["images_per_s"]
        cpu = f"{c['cpu_ms_per_image']:.1f} vs {t['cpu_ms_per_image']:.1f}"
        fraction = f"{c['images_per_s'] / limit:.2f}" if limit else "n/a"
        path = c.get("loader", {}).get("path", "?")
        lines.append(
            f"| {recipe} | {t['images_per_s']:.0f} img/s | {c['images_per_s']:.0f} img/s "
            f"| **{ratio:.1f}x** | {dali} | {versus} | {cpu} | {path} | {fraction} |"
        )
    if limit:
        lines.append(
            f"\nDecode-only limit: {limit:.0f} img/s ({decode['single_thread_ips']:.0f} x "
            f"{workers} threads, libjpeg-turbo, same files)."
        )
    return "\n".join(lines) + "\n"


def dali_notes(results: dict) -> str:
    """Per recipe, what DALI (CPU) lacks or does differently, or why it did not run."""
    from dali_recipes import LACKS

    lines = ["DALI-CPU per recipe (`baselines/dali_recipes.py`; DALI has no VOC XML reader):", ""]
    for recipe, by_loader in results.items():
        d = by_loader.get("dali", {})
        if not d:
            continue
        why = LACKS.get(recipe, "")
        if d.get("status") != "ok" and not str(d.get("reason", "")).startswith("not measured"):
            why = f"{d.get('reason')}. {why}"
        elif d.get("status") != "ok":
            why = d["reason"]
        version = d.get("versions", {}).get("dali")
        lines.append(f"- {recipe}{f' (DALI {version})' if version else ''}: {why}")
    return "\n".join(lines) + "\n"


def plot(results: dict, decode: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipes = list(results)
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.27
    for k, loader in enumerate(LOADERS):
        values = [results[r].get(loader, {}).get("images_per_s", 0) for r in recipes]
        label = "DALI-CPU (images only)" if loader == "dali" else loader
        ax.bar([i + (k - 1) * width for i in range(len(recipes))], values, width, label=label)
    if decode.get("limit_ips"):
        ax.axhline(decode["limit_ips"], color="gray", ls="--", label="decode-only limit")
    ax.set_xticks(range(len(recipes)), recipes)
    ax.set_ylabel("images / s")
    ax.set_title("torchvision reference recipes: torch DataLoader vs conveyor vs DALI-CPU")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def update_readme(markdown: str) -> None:
    readme = HERE / "README.md"
    begin, end = "<!-- bench_recipes:begin -->\n", "<!-- bench_recipes:end -->"
    text = readme.read_text()
    section = begin + markdown + end
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text += "\n## Reference recipes (bench_recipes.py)\n\n" + section + "\n"
    readme.write_text(text)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.one or args.decode:
        try:
            if args.decode:
                result = {"status": "ok", **measure_decode(args)}
            else:
                args.loader, args.recipe = args.one
                result = {"status": "ok", **measure_one(args)}
        except Unavailable as exc:  # a peer that cannot run this recipe: says why
            result = {"status": "unavailable", "reason": str(exc)}
        except Exception as exc:  # reported, never estimated
            import traceback

            traceback.print_exc()
            result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    os.nice(args.nice)
    from voc_tree import ensure_tree

    args.root = args.data_dir / f"voc-{args.images}"
    tree = ensure_tree(args.root, args.images, seed=args.seed)
    print(f"tree: {args.root} ({tree})", flush=True)
    decode = child(args, ["--decode"])
    print(f"decode-only limit: {decode.get('limit_ips', decode)}", flush=True)
    results: dict = {}
    for recipe in args.recipes:
        for loader in args.loaders:
            if loader == "dali":
                python = DALI_VENV / "bin" / "python"
                if not python.exists():
                    r = {"status": "unavailable", "reason": DALI_MISSING}
                else:
                    r = child(args, ["--one", loader, recipe], python=str(python))
            else:
                r = child(args, ["--one", loader, recipe])
            results.setdefault(recipe, {})[loader] = r
            shown = f"{r['images_per_s']:.1f} img/s" if r.get("status") == "ok" else r
            print(f"{recipe:14s} {loader:9s} {shown}", flush=True)
    markdown = table(results, decode, args.workers)
    if "dali" in args.loaders:
        markdown += "\n" + dali_notes(results)
    print(markdown)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "cpu_count": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "tree": tree,
        "settings": {k: v for k, v in vars(args).items() if k not in ("one", "decode")},
        "recipes": RECIPES,
        "decode_limit": decode,
        "results": results,
    }
    args.out.write_text(json.dumps(payload, indent=2, default=str))
    args.out.with_suffix(".md").write_text(markdown)
    if not args.no_plot:
        plot(results, decode, args.out.with_suffix(".png"))
    if args.readme:
        update_readme(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
