"""Run torch's own ``test/test_dataloader.py`` against ``conveyor.DataLoader``.

torch's test file is not part of this repository (it is torch's code): put a copy of
``test/test_dataloader.py`` from the pytorch/pytorch tag matching the installed torch at
``tests/torch_compat/upstream/torch_test_dataloader.py`` (git-ignored; named so that pytest does
not collect it) or pass its path with ``--torch-test``. This script copies it into a temporary
directory as ``test_dataloader.py``, changes only its import of ``DataLoader`` (to conveyor's, with
the chosen ``worker_mode``), runs it with pytest and prints the pass counts.

Usage (from the repository root)::

    PYTHONPATH=python .venv/bin/python tests/torch_compat/run_torch_dataloader_tests.py \
        --worker-mode process [-- extra pytest args, e.g. -k TestDataLoader]

``--worker-mode torch`` runs the file unchanged (torch's DataLoader): the reference count on this
machine. The differences that remain are listed in README.md ("Differences from torch's
DataLoader").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_COPY = HERE / "upstream" / "torch_test_dataloader.py"

_SHIM = '''"""conveyor.DataLoader with worker_mode={mode!r} by default (written by the runner)."""
from typing import TypeVar

import conveyor

_T_co = TypeVar("_T_co", covariant=True)


class DataLoader(conveyor.DataLoader[_T_co]):
    def __init__(self, *args, worker_mode={mode!r}, **kwargs):
        super().__init__(*args, worker_mode=worker_mode, **kwargs)
'''

# torch's file imports DataLoader in one parenthesised `from torch.utils.data import (...)` block
_IMPORT_LINE = re.compile(r"^(\s+)DataLoader,\n", re.MULTILINE)


def adapt(source: str, mode: str) -> str:
    """The test file with ``DataLoader`` taken from conveyor (unchanged for mode ``torch``)."""
    if mode == "torch":
        return source
    adapted, count = _IMPORT_LINE.subn("", source, count=1)
    if count != 1:
        raise SystemExit("could not find the `DataLoader,` import line in the torch test file")
    marker = "from torch.utils.data._utils import MP_STATUS_CHECK_INTERVAL\n"
    if marker not in adapted:
        raise SystemExit(f"could not find {marker.strip()!r} in the torch test file")
    return adapted.replace(marker, marker + "from _conveyor_dataloader import DataLoader\n", 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-test", type=Path, default=None, help="path of torch's file")
    parser.add_argument(
        "--worker-mode", choices=("thread", "process", "auto", "torch"), default="thread"
    )
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    source_path = args.torch_test or Path(
        os.environ.get("CONVEYOR_TORCH_TEST_DATALOADER", DEFAULT_COPY)
    )
    if not source_path.is_file():
        print(
            f"torch's test_dataloader.py not found at {source_path}: copy it there from "
            "pytorch/pytorch (test/test_dataloader.py) or pass --torch-test",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="conveyor-torch-compat-") as tmp:
        target = Path(tmp) / "test_dataloader.py"
        target.write_text(adapt(source_path.read_text(), args.worker_mode))
        (Path(tmp) / "_conveyor_dataloader.py").write_text(_SHIM.format(mode=args.worker_mode))
        env = dict(os.environ)
        python_dir = str(HERE.parents[1] / "python")
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (tmp, python_dir, env.get("PYTHONPATH", "")) if p
        )
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(target),
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            tmp,
            *args.pytest_args,
        ]
        result = subprocess.run(command, cwd=tmp, env=env)
        shutil.rmtree(Path(tmp) / "__pycache__", ignore_errors=True)
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
