"""Ratios, the markdown table and the plot of bench_loader.py's results.

The issue's targets (on the 2-core machine) are checked here against what was measured, and
reported as met or as how far off they are; a column that did not run shows why.
"""

from __future__ import annotations

import re
from pathlib import Path

PIPELINE_NAMES = {
    "det512": "Resize 512x512",
    "rrc224": "RandomResizedCrop 224",
    "val224": "Resize 256 + CenterCrop 224",
}
# (dataset, pipeline, numerator column, denominator column or "limit", wanted ratio)
TARGETS = (
    ("detection", "det512", "conveyor", "torch-pillow", 8.0),
    ("detection", "det512", "conveyor", "dali", 3.0),
    ("detection", "det512", "conveyor", "limit", 0.6),
    ("detection", "rrc224", "conveyor", "limit", 0.9),
    ("segmentation", "rrc224", "conveyor", "limit", 0.9),
)
README_BEGIN = "<!-- bench_loader:begin -->"
README_END = "<!-- bench_loader:end -->"


def _rate(report: dict, dataset: str, pipeline: str, column: str) -> float | None:
    if column == "limit":
        limit = _limit(report, dataset, pipeline)
        return limit.get("limit_ips") if limit.get("status") == "ok" else None
    for row in report["results"]:
        if (row["dataset"], row["pipeline"], row["column"]) == (dataset, pipeline, column):
            return row["images_per_s"] if row.get("status") == "ok" else None
    return None


def _limit(report: dict, dataset: str, pipeline: str) -> dict:
    """The decode-only limit measured around this scenario (else the run's overall one)."""
    for limit in report.get("decode_limits", []):
        if (limit["dataset"], limit["pipeline"]) == (dataset, pipeline):
            return limit
    return report.get("decode_limit", {})


def _row(report: dict, dataset: str, pipeline: str, column: str) -> dict | None:
    for row in report["results"]:
        if (row["dataset"], row["pipeline"], row["column"]) == (dataset, pipeline, column):
            return row
    return None


def summarize(report: dict) -> dict:
    """Adds per-row ratios (to torch+Pillow and to the decode limit) and checks the targets."""
    for row in report["results"]:
        rate = row.get("images_per_s") if row.get("status") == "ok" else None
        torch_rate = _rate(report, row["dataset"], row["pipeline"], "torch-pillow")
        limit = _rate(report, row["dataset"], row["pipeline"], "limit")
        row["x_torch_pillow"] = rate / torch_rate if rate and torch_rate else None
        row["x_decode_limit"] = rate / limit if rate and limit else None
        together = _limit(report, row["dataset"], row["pipeline"]).get("measured_threads_ips")
        row["x_decode_threads_measured"] = rate / together if rate and together else None
    targets = []
    for dataset, pipeline, top, bottom, wanted in TARGETS:
        a, b = _rate(report, dataset, pipeline, top), _rate(report, dataset, pipeline, bottom)
        name = (
            f"{top} / {'decode-only limit' if bottom == 'limit' else report['columns'].get(bottom, bottom)}"
            f", {dataset} {PIPELINE_NAMES[pipeline]}"
        )
        if a is None or b is None:
            missing = top if a is None else bottom
            row = (
                _row(report, dataset, pipeline, missing)
                if missing != "limit"
                else _limit(report, dataset, pipeline)
            )
            why = (row or {}).get("status", "not measured in this run")
            targets.append(
                {
                    "target": name,
                    "wanted": wanted,
                    "measured": None,
                    "status": f"not measured: {missing} {why}",
                }
            )
            continue
        ratio = a / b
        status = "met" if ratio >= wanted else f"missed: {ratio / wanted:.0%} of the target"
        targets.append({"target": name, "wanted": wanted, "measured": ratio, "status": status})
    return {"targets": targets}


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def markdown(report: dict) -> str:
    """The results as markdown: the decode-only limit, one row per measurement, the targets."""
    config, limit, tree = report["config"], report["decode_limit"], report["tree"]
    lines = [
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']['cpu']} ({report['machine']['cores']} cores, shared; "
        f"load {report['machine']['loadavg_start'][0]:.1f} at start). {tree['num_images']} images "
        f"{'x'.join(map(str, tree.get('first_image_size') or ['?']))} (mean {tree['mean_jpeg_bytes'] / 1024:.0f} KiB, {tree['generator']}), batch "
        f"{config['batch_size']}, {config['workers']} threads / worker processes each, "
        f"{config['seconds']:g} s per measurement, median of {config['repeat']}.  ",
    ]
    if limit.get("status") == "ok":
        lines.append(
            f"Decode-only limit (median over the run): {limit['single_thread_ips']:.0f} img/s on one "
            f"thread ({limit['ms_per_image']:.2f} ms/image, {limit['decoder']}) x {config['workers']} = "
            f"**{limit['limit_ips']:.0f} img/s** ({config['workers']} threads really together: "
            f"{limit['measured_threads_ips']:.0f} img/s; per second of CPU time, i.e. on an idle core: "
            f"{limit.get('single_thread_cpu_ips', 0):.0f} img/s). Each scenario's ratios use the limit "
            "measured right before and after it (median; its *decode-only limit* row). On a saturated machine "
            f"{config['workers']} threads decode less than {config['workers']}x one thread; the "
            f"*x {config['workers']}-thread decode* column divides by what {config['workers']} "
            "decode threads really did at that moment."
        )
    else:
        lines.append(f"Decode-only limit: not measured ({limit.get('reason', '?')}).")
    lines += [
        "",
        "| dataset | pipeline | loader | images/s | x torch+Pillow | x decode limit "
        f"| x {config['workers']}-thread decode | first batch (s) | peak PSS / RSS (MiB) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes, warned = [], []
    shown_limits = set()
    for row in report["results"]:
        scenario = (row["dataset"], row["pipeline"])
        if scenario not in shown_limits:
            shown_limits.add(scenario)
            rate = _rate(report, *scenario, "limit")
            together = _limit(report, *scenario).get("measured_threads_ips")
            lines.append(
                f"| {row['dataset']} | {PIPELINE_NAMES[row['pipeline']]} | *decode-only limit* | "
                f"*{_fmt(rate, '.0f', 'not measured')}* | | 1.00 | "
                f"*{_fmt(together, '.0f')} img/s* | | |"
            )
        head = f"| {row['dataset']} | {PIPELINE_NAMES[row['pipeline']]} | {row['label']} |"
        if row.get("status") != "ok":
            notes.append(
                f"{row['label']}, {row['dataset']} {row['pipeline']}: {row.get('reason', '')}"
            )
            lines.append(f"{head} {row['status']} [{len(notes)}] | | | | | |")
            continue
        lines.append(
            f"{head} {row['images_per_s']:.0f} | {_fmt(row['x_torch_pillow'], '.2f')} | "
            f"{_fmt(row['x_decode_limit'], '.2f')} | {_fmt(row['x_decode_threads_measured'], '.2f')} | "
            f"{row['time_to_first_batch_s']:.2f} | "
            f"{row['peak_pss_mib']:.0f} / {row['peak_rss_mib']:.0f} |"
        )
        path = row.get("loader", {}).get("path")
        if path and path != "native":
            warned.append(
                f"{row['label']}, {row['dataset']} {row['pipeline']} ran the {path} path, "
                "not the native engine"
            )
        for warning in row.get("warnings", []):
            warned.append(f"{row['label']}, {row['dataset']} {row['pipeline']} warned: {warning}")
    lines += ["", "| target | wanted | measured | status |", "|---|---:|---:|---|"]
    for t in report["summary"]["targets"]:
        lines.append(
            f"| {t['target']} | >= {t['wanted']:g}x | {_fmt(t['measured'], '.2f')} | {t['status']} |"
        )
    if notes or warned:
        lines.append("")
    lines += [f"[{i}] {note}  " for i, note in enumerate(notes, 1)]
    lines += [f"- {note}" for note in warned]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> Path | None:
    """Grouped bars of images/s per scenario and loader, with the decode-only limit as a line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install matplotlib)")
        return None
    scenarios = []
    for row in report["results"]:
        key = (row["dataset"], row["pipeline"])
        if key not in scenarios:
            scenarios.append(key)
    columns = list(report["columns"])
    width = 0.8 / max(1, len(columns))
    fig, ax = plt.subplots(figsize=(2.2 + 2.4 * len(scenarios), 4.5))
    for c, column in enumerate(columns):
        xs, ys = [], []
        for s, (dataset, pipeline) in enumerate(scenarios):
            rate = _rate(report, dataset, pipeline, column)
            xs.append(s + (c - (len(columns) - 1) / 2) * width)
            ys.append(rate or 0.0)
        bars = ax.bar(xs, ys, width, label=report["columns"][column])
        for bar, y in zip(bars, ys):
            ax.annotate(
                "n/a" if y == 0 else f"{y:.0f}",
                (bar.get_x() + bar.get_width() / 2, y),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    for s, (dataset, pipeline) in enumerate(scenarios):
        limit = _rate(report, dataset, pipeline, "limit")
        if limit:
            ax.hlines(
                limit,
                s - 0.45,
                s + 0.45,
                colors="black",
                linestyles="--",
                linewidth=1,
                label="decode-only limit" if s == 0 else None,
            )
            ax.annotate(f"{limit:.0f}", (s + 0.45, limit), ha="right", va="bottom", fontsize=7)
    ax.set_xticks(range(len(scenarios)))
    ax.set_xticklabels([f"{d}\n{PIPELINE_NAMES[p]}" for d, p in scenarios])
    ax.set_ylabel("images / s (higher is better)")
    ax.set_title(
        f"Loader throughput, {report['config']['workers']} threads, batch {report['config']['batch_size']}"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def update_readme(readme: Path, table: str) -> None:
    """Replaces the text between the Loader markers of benchmarks/README.md with ``table``."""
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_BEGIN} ... {README_END} block")
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.S)
    readme.write_text(pattern.sub(lambda _: f"{README_BEGIN}\n{table}{README_END}", text))
