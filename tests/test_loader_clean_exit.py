"""Exiting is clean every time on the Python (generic) path with worker threads: a script that
stops iterating mid-epoch and returns, one that raises, and one interrupted by Ctrl-C (SIGINT) all
exit without SIGABRT. Before, a daemon worker thread still inside a torch kernel re-took the GIL during
interpreter finalisation ("terminate called without an active exception")."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import conveyor

# the subprocess imports the conveyor this test imported (installed, or the source tree)
PYTHON_DIR = Path(conveyor.__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from conveyor import DataLoader

    class Heavy(torch.utils.data.Dataset):
        # Each item spends its time in torch kernels (GIL released), as image transforms do.
        def __len__(self):
            return 10_000

        def __getitem__(self, index):
            x = torch.randn(1, 3, 96, 96)
            w = torch.randn(8, 3, 5, 5)
            for _ in range(4):
                x = torch.nn.functional.conv2d(x, w, padding=2)[:, :3]
            return x[0]

    loader = DataLoader(Heavy(), batch_size=4, num_workers=3, worker_mode="thread")
    for step, batch in enumerate(loader):
        if step == 2:
            print("iterating", flush=True)
            if sys.argv[1] == "return":
                break
            if sys.argv[1] == "raise":
                raise RuntimeError("stop here")
    """
)


def run(mode, tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=f"{PYTHON_DIR}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    process = subprocess.Popen(
        [sys.executable, str(script), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout.readline() == "iterating\n"
    if mode == "sigint":
        process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert "terminate called" not in stderr
    return process.returncode, stderr


@pytest.mark.parametrize("attempt", range(2))
def test_returning_mid_epoch_exits_cleanly(tmp_path, attempt):
    assert run("return", tmp_path) == (0, "")


@pytest.mark.parametrize("attempt", range(1))
def test_an_exception_mid_epoch_exits_cleanly(tmp_path, attempt):
    code, stderr = run("raise", tmp_path)
    assert code == 1 and "RuntimeError: stop here" in stderr


@pytest.mark.parametrize("attempt", range(3))
def test_ctrl_c_mid_epoch_exits_cleanly(tmp_path, attempt):
    code, _ = run("sigint", tmp_path)
    # Killed by the re-raised SIGINT, or (today) a clean 0: the loop ends on Ctrl-C. Never
    # SIGABRT.
    assert code in (0, -signal.SIGINT)
