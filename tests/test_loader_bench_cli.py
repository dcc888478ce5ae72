"""``conveyor bench`` runs end to end on a tiny synthetic tree (no speed assertions here:
speed is measured by the benchmark scripts)."""

import json

import pytest

from conveyor import bench, cli


def test_bench_command_runs_both_loaders(tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = cli.main(
        [
            "bench",
            "--images",
            "8",
            "--image-size",
            "64x48",
            "--batch-size",
            "4",
            "--workers",
            "0",
            "--pipeline",
            "classification",
            "--json",
            str(out),
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "conveyor / torch:" in printed and "images/s" in printed
    results = json.loads(out.read_text())
    assert results["torch"]["images"] == results["conveyor"]["images"] == 8  # trainval: every image
    assert results["conveyor"]["path"] == "native"
    assert results["ratio"] > 0


@pytest.mark.parametrize("argv", [["--batch-size", "0"], ["--root", "/does/not/exist"]])
def test_bench_rejects_bad_arguments(argv, capsys):
    assert bench.main("bench", argv) == 2
    assert "conveyor bench" in capsys.readouterr().err


def test_build_transforms_are_fully_native():
    from conveyor.loader.planner import plan_transforms

    for pipeline in bench.PIPELINES:
        assert plan_transforms(bench.build_transforms(pipeline)).fully_native
