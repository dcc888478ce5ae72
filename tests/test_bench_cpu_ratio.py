"""benchmarks/bench_cpu_ratio.py runs end to end on a tiny tree and writes its JSON and plot.

It proves the benchmark works, not how fast anything is: no timing assertions.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_bench_cpu_ratio_quick_run_writes_results(tmp_path):
    pytest.importorskip("torchvision")
    pytest.importorskip("conveyor._core")
    out = tmp_path / "results" / "bench_cpu_ratio.json"
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "bench_cpu_ratio.py"),
        "--images",
        "32",
        "--rounds",
        "1",
        "--warmup-epochs",
        "0",
        "--pipelines",
        "rrc224",
        "--engine-threads",
        "1",
        "--workers",
        "1",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(out),
    ] + ([] if has_matplotlib else ["--no-plot"])
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if "libturbojpeg not found" in done.stderr:
        pytest.skip("libturbojpeg (the decode-only limit) is not installed")
    assert done.returncode == 0, done.stdout + done.stderr

    report = json.loads(out.read_text())
    assert report["tree"]["num_images"] == 32
    rows = {(row["dataset"], row["measured"]): row for row in report["results"]}
    assert set(rows) == {
        (d, m) for d in ("detection", "segmentation") for m in ("engine", "DataLoader")
    }
    for row in rows.values():
        assert row["status"] == "ok", row
        assert row["pipeline"] == "rrc224" and row["threads"] == 1
        assert row["cpu_ms_per_image"] > 0 and row["ratio_to_raw_turbojpeg"] > 0
        assert len(row["rounds_ratio_to_raw_turbojpeg"]) == 1
    # the DataLoader rows ran bench_loader's conveyor column on the engine, not in Python
    assert rows["detection", "DataLoader"]["loader"]["path"] == "native"
    assert rows["segmentation", "DataLoader"]["loader"]["path"] == "native"
    assert "| detection | RandomResizedCrop 224 | DataLoader |" in done.stdout
    if has_matplotlib:
        assert out.with_suffix(".png").stat().st_size > 0


def test_bench_cpu_ratio_reports_what_cannot_run(tmp_path, monkeypatch):
    """A subject this conveyor cannot run (e.g. an older --conveyor-tree) is a "not available"
    row with the reason, and the other rows still run."""
    pytest.importorskip("torchvision")
    pytest.importorskip("conveyor._core")
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    bench = pytest.importorskip("bench_cpu_ratio")
    try:
        bench.load_turbojpeg()
    except OSError:
        pytest.skip("libturbojpeg (the decode-only limit) is not installed")

    def no_engine(*_args, **_kwargs):
        raise bench.Unavailable("this conveyor has no engine factory")

    monkeypatch.setattr(bench, "engine_subject", no_engine)
    out = tmp_path / "ratio.json"
    bench.main(
        [
            "--images",
            "32",
            "--rounds",
            "1",
            "--warmup-epochs",
            "0",
            "--datasets",
            "detection",
            "--pipelines",
            "rrc224",
            "--engine-threads",
            "1",
            "--workers",
            "1",
            "--no-plot",
            "--data-dir",
            str(tmp_path / "data"),
            "--out",
            str(out),
        ]
    )
    rows = {row["measured"]: row for row in json.loads(out.read_text())["results"]}
    assert rows["engine"]["status"] == "not available"
    assert rows["engine"]["reason"] == "this conveyor has no engine factory"
    assert rows["engine"]["value"] is None
    assert rows["DataLoader"]["status"] == "ok" and rows["DataLoader"]["cpu_ms_per_image"] > 0
