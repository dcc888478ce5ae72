"""benchmarks/bench_png.py runs end to end on a tiny tree and writes its JSON.

It proves the benchmark works (every column decodes the same indices), not how fast anything
is: no timing assertions.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_bench_png_quick_run_writes_results(tmp_path):
    pytest.importorskip("torchvision")
    pytest.importorskip("conveyor._core")
    out = tmp_path / "bench_png.json"
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "bench_png.py"),
        "--images",
        "6",
        "--rounds",
        "1",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--no-plot",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["images"] == 6
    assert [row["label"] for row in report["results"]] == [
        "conveyor",
        "libspng",
        "pillow",
        "torchvision",
    ]
    assert all(row["ms_per_image"] > 0 for row in report["results"])
