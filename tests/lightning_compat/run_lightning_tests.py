"""Run Lightning 1.6.5's own test files against conveyor and count what passes.

Lightning's test files are Lightning's code and are not part of this repository: put copies from
the Lightning-AI/lightning tag ``1.6.5`` under ``tests/lightning_compat/upstream/`` (git-ignored),
keeping Lightning's layout::

    upstream/tests/checkpointing/test_model_checkpoint.py
    upstream/tests/checkpointing/test_checkpoint_callback_frequency.py
    upstream/tests/utilities/test_argparse.py
    upstream/tests/trainer/test_trainer_cli.py
    upstream/tests/trainer/flags/test_env_vars.py

(e.g. ``git -C <lightning clone> show 1.6.5:tests/utilities/test_argparse.py > ...``). Without
them the script says so and exits 0 (it is not part of ``make test``).

The files run unchanged except for the substitutions in ``SUBSTITUTIONS`` (names that differ on
purpose, each with its reason). Imports stay as written: a ``pytorch_lightning`` package from
``shim/`` maps every imported name onto conveyor's object, and ``tests.helpers`` is conveyor's
own version of Lightning's test helpers (``BoringModel`` on ``conveyor.Module``...).

Usage (from the repository root)::

    PYTHONPATH=python .venv/bin/python tests/lightning_compat/run_lightning_tests.py \
        [-- extra pytest args, e.g. -k every_n]

It prints passed/failed/skipped per file, then the failures grouped by cause; failures that
touch Lightning's private internals (``trainer.fit_loop``, ``_checkpoint_connector``...) are
listed apart. The remaining differences are listed in README.md ("Differences from Lightning").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

HERE = Path(__file__).resolve().parent
UPSTREAM = HERE / "upstream"
SHIM = HERE / "shim"
REPO_PYTHON = HERE.parents[1] / "python"

# (file relative to upstream/, old text, new text, why). Only names conveyor spells differently
# on purpose; behaviour is never edited out of a test.
SUBSTITUTIONS: List[Tuple[str, str, str, str]] = [
    (
        "tests/trainer/flags/test_env_vars.py",
        "PL_TRAINER_",
        "CONVEYOR_TRAINER_",
        "conveyor reads its Trainer defaults from CONVEYOR_TRAINER_<ARG>, not PL_TRAINER_<ARG>",
    ),
    (
        "tests/checkpointing/test_model_checkpoint.py",
        "def mock_training_epoch_loop(trainer):",
        "from tests.helpers.spies import scheduler_monitor_calls as mock_training_epoch_loop\n\n\n"
        "def _lightning_mock_training_epoch_loop(trainer):",
        "private internals: the tests spy on fit_loop.epoch_loop._get_monitor_value; our spy "
        "records the value each ReduceLROnPlateau scheduler is stepped with instead",
    ),
    (
        "tests/checkpointing/test_model_checkpoint.py",
        "trainer.fit_loop.max_epochs = 4",
        "trainer.max_epochs = 4",
        "private internals: conveyor keeps max_epochs on the Trainer (there is no fit_loop object)",
    ),
    (
        "tests/checkpointing/test_model_checkpoint.py",
        "trainer.fit_loop.epoch_progress.current.processed",
        "trainer.current_epoch",
        "private internals: no loop progress objects; current_epoch counts the epochs processed",
    ),
    (
        "tests/checkpointing/test_model_checkpoint.py",
        "trainer._checkpoint_connector.dump_checkpoint()",
        "trainer._dump_checkpoint()",
        "private internals: conveyor's checkpoint connector is a Trainer mixin",
    ),
    (
        "tests/utilities/test_argparse.py",
        '== "pl.Trainer"',
        '== "conveyor.Trainer"',
        "conveyor's own classes get argument groups titled conveyor.<Name>, not pl.<Name>",
    ),
]

# A failure whose message names one of these is about Lightning's private internals.
PRIVATE_NAMES = (
    "fit_loop",
    "epoch_loop",
    "_checkpoint_connector",
    "_get_monitor_value",
    "_accelerator_connector",
    "_data_connector",
    "_logger_connector",
    "_results",
)


def _prepare(workdir: Path) -> List[Path]:
    """Copy the upstream tests, our shim and helpers into ``workdir``; return the test files."""
    shutil.copytree(UPSTREAM / "tests", workdir / "tests")
    for directory in [workdir / "tests", *sorted((workdir / "tests").rglob("*"))]:
        if directory.is_dir() and not (directory / "__init__.py").exists():
            (directory / "__init__.py").write_text("")
    shutil.copytree(SHIM / "tests" / "helpers", workdir / "tests" / "helpers", dirs_exist_ok=True)
    shutil.copytree(SHIM / "pytorch_lightning", workdir / "pytorch_lightning")
    shutil.copy(SHIM / "conftest.py", workdir / "conftest.py")
    for relative, old, new, why in SUBSTITUTIONS:
        path = workdir / relative
        if not path.exists():
            continue
        text = path.read_text()
        if old not in text:
            raise SystemExit(f"{relative}: expected text {old!r} not found ({why})")
        path.write_text(text.replace(old, new))
    return sorted(
        p
        for p in (workdir / "tests").rglob("test_*.py")
        if "helpers" not in p.relative_to(workdir).parts
    )


def _cause(message: str) -> str:
    """A failure message reduced to what groups alike failures: first line, no numbers/paths."""
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else "(no message)"
    first = re.sub(r"/[^\s'\"]+", "<path>", first)
    first = re.sub(r"\b\d+(\.\d+)?\b", "N", first)
    return first[:160]


def _read_junit(path: Path) -> Dict[str, Dict[str, list]]:
    """Per test file: lists of (test id, message) for passed/failed/skipped."""
    results: Dict[str, Dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for case in ET.parse(path).getroot().iter("testcase"):
        # a file that fails to import is reported with its dotted module path as the name
        module = (case.get("classname") or case.get("name", "")).split(".")
        # classname is "tests.a.test_x" or "tests.a.test_x.Class"
        while module and not module[-1].startswith("test_"):
            module.pop()
        file_key = "/".join(module) + ".py"
        test_id = case.get("name", "")
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", child.get("message") or (child.text or "")
                break
            if child.tag == "skipped":
                outcome, message = "skipped", child.get("message", "")
        results[file_key][outcome].append((test_id, message))
    return results


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--conveyor",
        type=Path,
        default=REPO_PYTHON,
        help="the python/ directory holding the conveyor package to test (default: this "
        "checkout's), e.g. an older tree's for before/after counts",
    )
    args = parser.parse_args(argv)
    if not (UPSTREAM / "tests").is_dir():
        print(
            f"Lightning's test files not found under {UPSTREAM / 'tests'}: skipping (see this "
            "script's docstring for which files to copy there)."
        )
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="conveyor-lightning-tests-"))
    try:
        test_files = _prepare(workdir)
        junit = workdir / "junit.xml"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(workdir), str(args.conveyor.resolve()), *filter(None, [env.get("PYTHONPATH")])]
        )
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
            "--rootdir",
            str(workdir),
            "-o",
            "junit_family=xunit1",
            f"--junitxml={junit}",
            *[str(p.relative_to(workdir)) for p in test_files],
            *args.pytest_args,
        ]
        completed = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
        if not junit.exists():
            print(completed.stdout[-4000:], completed.stderr[-4000:], sep="\n")
            return completed.returncode or 1
        results = _read_junit(junit)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"{'file':<60} {'passed':>6} {'failed':>6} {'skipped':>7}")
    totals = [0, 0, 0]
    for file_key in sorted(results):
        counts = [len(results[file_key][k]) for k in ("passed", "failed", "skipped")]
        totals = [a + b for a, b in zip(totals, counts)]
        print(f"{file_key:<60} {counts[0]:>6} {counts[1]:>6} {counts[2]:>7}")
    print(f"{'total':<60} {totals[0]:>6} {totals[1]:>6} {totals[2]:>7}")

    by_cause: Dict[Tuple[bool, str], List[str]] = defaultdict(list)
    for file_key, outcomes in results.items():
        for test_id, message in outcomes["failed"]:
            private = any(name in (message or "") for name in PRIVATE_NAMES)
            by_cause[(private, _cause(message))].append(f"{Path(file_key).name}::{test_id}")
    for private, title in (
        (False, "Failures"),
        (True, "Failures on Lightning's private internals"),
    ):
        causes = sorted(
            ((c, t) for (p, c), t in by_cause.items() if p == private), key=lambda x: -len(x[1])
        )
        if causes:
            print(f"\n{title}, by cause:")
        for cause, tests in causes:
            print(f"  [{len(tests)}] {cause}")
            for test in tests:
                print(f"      {test}")
    skipped = [(f, t, m) for f, o in results.items() for t, m in o["skipped"]]
    if skipped:
        print("\nSkipped:")
        for file_key, test_id, message in skipped:
            print(f"  {Path(file_key).name}::{test_id}: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
