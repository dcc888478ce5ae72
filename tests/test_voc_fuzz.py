"""Runs the atheris differential fuzz harness briefly (a few seconds) in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris (pip install atheris) drives the fuzz harness")

HARNESS = Path(__file__).with_name("fuzz_voc_atheris.py")


def test_fuzz_parse_voc_xml_against_elementtree(tmp_path):
    seconds = os.environ.get("CONVEYOR_FUZZ_SECONDS", "4")
    result = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            f"-max_total_time={seconds}",
            "-seed=1",
            "-max_len=2048",
            "-reduce_inputs=0",
            "-rss_limit_mb=4096",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Done" in output, output[-4000:]
