#!/usr/bin/env python3
"""Loader benchmark: conveyor vs torch's DataLoader (Pillow, pillow-simd), DALI-CPU and SPDL.

Side by side in one run, on the same VOC-like files and the same cores, for the detection and
segmentation datasets and two pipelines (512x512 detection resize; RandomResizedCrop(224)).
Each measurement runs in a fresh subprocess with the interpreter of the peer's venv
(``benchmarks/setup_peers.sh`` makes them); a peer that is missing is recorded as "not
available" with the reason, never estimated. Everything runs under ``nice``.

    .venv/bin/python benchmarks/bench_loader.py            # a few minutes
    .venv/bin/python benchmarks/bench_loader.py --quick    # 1-2 minutes: detection only, short
    .venv/bin/python benchmarks/bench_loader.py --readme   # also refresh benchmarks/README.md

Writes ``benchmarks/results/bench_loader.json``, ``.md`` (the table) and ``.png`` (the plot).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import loader_report  # noqa: E402
from source_tree import SOURCE_TREE  # noqa: E402  (this checkout's build first)
from voc_tree import ensure_tree  # noqa: E402

DATASETS = ("detection", "segmentation")
PIPELINES = ("det512", "rrc224")
# column key -> (label, peer module run by run_one.py, interpreter (None: this one), needs conveyor)
COLUMNS = {
    "conveyor": ("conveyor", "conveyor", None, True),
    "torch-pillow": ("torch DataLoader + Pillow", "torch", None, False),
    "torch-pillow-simd": (
        "torch DataLoader + pillow-simd",
        "torch",
        HERE / ".venv-pillow-simd",
        False,
    ),
    "dali": ("DALI (CPU)", "dali", HERE / ".venv-dali", False),
    "spdl": ("SPDL (FFmpeg)", "spdl", HERE / ".venv-spdl", False),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short run (1-2 minutes): detection dataset only, 200 images, 2 s per measurement",
    )
    parser.add_argument(
        "--images", type=int, help="images in the generated tree (default 1000; quick 200)"
    )
    parser.add_argument(
        "--seconds", type=float, help="steady-state seconds per measurement (default 12; quick 2)"
    )
    parser.add_argument(
        "--decode-seconds",
        type=float,
        help="seconds for each decode-only measurement (default: max(1, seconds / 3))",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds over all measurements; the median is kept"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="threads / worker processes for every loader"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--columns", default=",".join(COLUMNS), help=f"subset of {','.join(COLUMNS)}"
    )
    parser.add_argument(
        "--datasets", help=f"subset of {','.join(DATASETS)} (default all; quick: detection)"
    )
    parser.add_argument("--pipelines", default=",".join(PIPELINES))
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=HERE / "data",
        help="where the VOC tree is generated (cached)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_loader.json")
    parser.add_argument(
        "--readme", action="store_true", help="replace the Loader table in benchmarks/README.md"
    )
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument(
        "--nice", type=int, default=10, help="niceness for this run and its subprocesses"
    )
    args = parser.parse_args(argv)
    args.images = args.images or (200 if args.quick else 1000)
    args.seconds = args.seconds or (2.0 if args.quick else 12.0)
    args.datasets = args.datasets or ("detection" if args.quick else ",".join(DATASETS))
    for name, allowed in (("columns", COLUMNS), ("datasets", DATASETS), ("pipelines", PIPELINES)):
        chosen = [c for c in getattr(args, name).split(",") if c]
        unknown = [c for c in chosen if c not in allowed]
        if unknown:
            parser.error(f"--{name}: unknown {unknown}; choose from {list(allowed)}")
        setattr(args, name, chosen)
    return args


def run_one(interpreter: str, peer: str, args, extra: list[str], conveyor: bool) -> dict:
    """Runs baselines/run_one.py in a fresh process; returns its RESULT (or why it failed)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if conveyor and SOURCE_TREE is not None:
        env["PYTHONPATH"] = str(SOURCE_TREE)
    command = [
        interpreter,
        str(HERE / "baselines" / "run_one.py"),
        "--peer",
        peer,
        "--root",
        str(args.tree_root),
        "--workers",
        str(args.workers),
        "--batch-size",
        str(args.batch_size),
        "--seed",
        str(args.seed),
        *extra,
    ]
    limit = 120 + 10 * args.seconds
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"no result within {limit:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": "failed", "reason": f"exit {done.returncode}: {tail}"}


def interpreter_for(venv: Path | None) -> tuple[str | None, str]:
    if venv is None:
        return sys.executable, ""
    python = venv / "bin" / "python"
    if not python.exists():
        return None, f"{venv.name} missing: run benchmarks/setup_peers.sh"
    return str(python), ""


def median_result(runs: list[dict]) -> dict:
    ok = [r for r in runs if r.get("status") == "ok"]
    if not ok:
        return dict(runs[-1])
    ok.sort(key=lambda r: r["images_per_s"])
    chosen = dict(ok[len(ok) // 2])
    chosen["images_per_s"] = statistics.median(r["images_per_s"] for r in ok)
    chosen["all_images_per_s"] = [r["images_per_s"] for r in ok]
    return chosen


def measure_decode_limit(
    args, seconds: float, runs: dict, dataset: str, pipeline: str, round_index: int, when: str
) -> None:
    d = run_one(sys.executable, "decode", args, ["--seconds", str(seconds)], False)
    runs.setdefault((dataset, pipeline), []).append(d)
    shown = (
        f"{d['limit_ips']:8.1f} img/s ({d['single_thread_ips']:.0f} x {args.workers})"
        if d.get("status") == "ok"
        else f"{d['status']}: {d.get('reason', '')}"
    )
    print(
        f"[round {round_index + 1}] {dataset:12s} {pipeline}  {'decode-only limit (' + when + ')':32s} {shown}",
        flush=True,
    )


def merge_decode_runs(runs: list[dict], workers: int) -> dict:
    """One decode-only limit from several measurements: the median single-thread rate."""
    ok = [d for d in runs if d.get("status") == "ok"]
    if not ok:
        return dict(runs[-1]) if runs else {"status": "not measured", "reason": "no scenario ran"}
    merged = dict(ok[0])
    merged["single_thread_ips"] = statistics.median(d["single_thread_ips"] for d in ok)
    merged["measured_threads_ips"] = statistics.median(d["measured_threads_ips"] for d in ok)
    merged["single_thread_cpu_ips"] = statistics.median(
        d.get("single_thread_cpu_ips", 0.0) for d in ok
    )
    merged["ms_per_image"] = 1000.0 / merged["single_thread_ips"]
    merged["limit_ips"] = merged["single_thread_ips"] * workers
    merged["all_single_thread_ips"] = [d["single_thread_ips"] for d in ok]
    return merged


def machine_info() -> dict:
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    os.nice(args.nice)
    started = time.time()
    tree = ensure_tree(args.data_dir / f"voc-{args.images}", args.images, args.seed)
    args.tree_root = Path(tree["root"])
    print(
        f"tree: {tree['num_images']} images, mean JPEG {tree['mean_jpeg_bytes'] / 1024:.0f} KiB, "
        f"made by {tree['generator']}  ({args.tree_root})",
        flush=True,
    )

    decode_seconds = args.decode_seconds or max(1.0, args.seconds / 3)
    results: dict[tuple[str, str, str], list[dict]] = {}
    # The decode-only limit is measured right before and right after each scenario's loaders,
    # so a change in the machine's load shifts the limit and the loaders together.
    decode_runs: dict[tuple[str, str], list[dict]] = {}
    for round_index in range(args.repeat):
        for dataset in args.datasets:
            for pipeline in args.pipelines:
                measure_decode_limit(
                    args, decode_seconds, decode_runs, dataset, pipeline, round_index, "before"
                )
                # Alternate the order between rounds so no column always runs first (or last).
                order = args.columns if round_index % 2 == 0 else list(reversed(args.columns))
                for key in order:
                    label, peer, venv, conveyor = COLUMNS[key]
                    python, why = interpreter_for(venv)
                    load_before = os.getloadavg()[0]
                    if python is None:
                        result = {"status": "not available", "reason": why}
                    else:
                        result = run_one(
                            python,
                            peer,
                            args,
                            [
                                "--dataset",
                                dataset,
                                "--pipeline",
                                pipeline,
                                "--seconds",
                                str(args.seconds),
                            ],
                            conveyor,
                        )
                    result["loadavg_before"] = load_before
                    results.setdefault((dataset, pipeline, key), []).append(result)
                    shown = (
                        f"{result['images_per_s']:8.1f} img/s"
                        if result.get("status") == "ok"
                        else f"{result['status']}: {result.get('reason', '')}"
                    )
                    print(
                        f"[round {round_index + 1}] {dataset:12s} {pipeline}  {label:32s} {shown}",
                        flush=True,
                    )
                measure_decode_limit(
                    args, decode_seconds, decode_runs, dataset, pipeline, round_index, "after"
                )

    report = {
        "benchmark": "bench_loader",
        "command": "python benchmarks/bench_loader.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {**machine_info(), "loadavg_end": os.getloadavg()},
        "config": {
            "images": args.images,
            "seconds": args.seconds,
            "repeat": args.repeat,
            "workers": args.workers,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "nice": args.nice,
        },
        "tree": tree,
        "decode_limit": merge_decode_runs(
            [d for runs in decode_runs.values() for d in runs], args.workers
        ),
        "decode_limits": [
            {"dataset": ds, "pipeline": pl, **merge_decode_runs(runs, args.workers)}
            for (ds, pl), runs in decode_runs.items()
        ],
        "columns": {key: COLUMNS[key][0] for key in args.columns},
        "results": [
            {
                "dataset": ds,
                "pipeline": pl,
                "column": key,
                "label": COLUMNS[key][0],
                **median_result(runs),
            }
            for (ds, pl, key), runs in results.items()
        ],
        "elapsed_s": time.time() - started,
    }
    report["summary"] = loader_report.summarize(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    table = loader_report.markdown(report)
    args.out.with_suffix(".md").write_text(table)
    print("\n" + table)
    if not args.no_plot:
        plot_path = loader_report.plot(report, args.out.with_suffix(".png"))
        print(f"plot: {plot_path}")
    if args.readme:
        loader_report.update_readme(HERE / "README.md", table)
        print("README: Loader table updated")
    print(f"results: {args.out}  ({report['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
