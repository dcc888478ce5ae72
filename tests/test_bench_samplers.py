"""benchmarks/bench_samplers.py runs end to end on a tiny tree and writes its JSON and plot.

It proves the benchmark works (every conveyor row on the native path), not how fast anything is:
no timing assertions.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_samplers_quick_run_writes_results(tmp_path):
    out = tmp_path / "results" / "bench_samplers.json"
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "bench_samplers.py"),
        "--images",
        "24",
        "--rounds",
        "1",
        "--workers",
        "1",
        "--nice",
        "0",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(out),
    ] + ([] if has_matplotlib else ["--no-plot"])
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    rows = {row["label"]: row for row in report["results"]}
    assert set(rows) == {
        "torch",
        "conveyor grouped",
        "conveyor shuffle=True",
        "conveyor batch_sampler",
        "conveyor grouped padded",
        "conveyor shuffle=True padded",
    }
    for label, row in rows.items():
        assert row["images_per_s"] > 0 and len(row["runs"]) == 1
        assert row["path"] == ("torch" if label == "torch" else "native")
        assert 0.0 <= row["padding_waste"] < 1.0
    # grouping by aspect ratio wastes less padding than shuffling, measured and in loader.stats
    for suffix in ("", " padded"):
        grouped, shuffled = (
            rows["conveyor grouped" + suffix],
            rows["conveyor shuffle=True" + suffix],
        )
        assert grouped["padding_waste"] < shuffled["padding_waste"]
    assert set(report["ratios"]) == {
        "grouped vs torch (target >= 4)",
        "batch_sampler vs shuffle=True (target >= 0.9)",
        "grouped padded vs torch",
        "grouped padded vs grouped unpadded",
    }
    assert not has_matplotlib or out.with_suffix(".png").is_file()
