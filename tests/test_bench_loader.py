"""benchmarks/bench_loader.py runs end to end on a tiny tree and writes its JSON, table and plot.

It proves the benchmark works, not how fast anything is: no timing assertions.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_bench_loader_quick_run_writes_results(tmp_path):
    pytest.importorskip("torchvision")
    out = tmp_path / "results" / "bench_loader.json"
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "bench_loader.py"),
        "--quick",
        "--images",
        "40",
        "--seconds",
        "0.2",
        "--decode-seconds",
        "0.3",
        "--pipelines",
        "det512",
        "--columns",
        "conveyor,torch-pillow",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(out),
    ] + ([] if has_matplotlib else ["--no-plot"])
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr

    report = json.loads(out.read_text())
    assert report["tree"]["num_images"] == 40
    assert report["decode_limit"]["status"] == "ok"
    assert report["decode_limit"]["limit_ips"] > 0
    rows = {row["column"]: row for row in report["results"]}
    assert set(rows) == {"conveyor", "torch-pillow"}
    torch_row = rows["torch-pillow"]
    assert torch_row["status"] == "ok", torch_row
    assert torch_row["images"] > 0 and torch_row["peak_pss_mib"] > 0
    assert torch_row["x_torch_pillow"] == pytest.approx(1.0)
    # conveyor either ran or says why it could not; it never fails silently.
    assert rows["conveyor"]["status"] in ("ok", "not available"), rows["conveyor"]
    assert len(report["summary"]["targets"]) == 5

    table = out.with_suffix(".md").read_text()
    assert "torch DataLoader + Pillow" in table and "decode-only limit" in table.lower()
    if has_matplotlib:
        assert out.with_suffix(".png").stat().st_size > 0
