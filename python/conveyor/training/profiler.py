"""``Trainer(profiler=...)``: where a run's time goes, hook by hook (Lightning 1.6's profilers).

``"simple"`` times every hook of the Module and the callbacks, each training batch and each wait
for the next batch, and prints a table (mean, calls, total, share) when the stage ends;
``"advanced"`` runs each action under ``cProfile`` and prints its top functions. A
:class:`Profiler` subclass (``start``/``stop``/``summary``) may be passed instead.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from typing import Dict, Iterator, List, Optional, Union

from conveyor.training.errors import MisconfigurationException

_NO_PROFILING = nullcontext()


class Profiler:
    """Base class: ``profile(action)`` brackets one timed action with ``start``/``stop``.

    Args:
        dirpath: directory of the report file (default: print the report instead).
        filename: report file name; written as ``<stage>-<filename>.txt``.
    """

    def __init__(self, dirpath: Optional[str] = None, filename: Optional[str] = None) -> None:
        self.dirpath, self.filename = dirpath, filename

    def start(self, action_name: str) -> None:
        raise NotImplementedError

    def stop(self, action_name: str) -> None:
        raise NotImplementedError

    def summary(self) -> str:
        raise NotImplementedError

    @contextmanager
    def profile(self, action_name: str) -> Iterator[None]:
        self.start(action_name)
        try:
            yield
        finally:
            self.stop(action_name)

    def describe(self, stage: str) -> None:
        """Print the report (or write it to ``dirpath/<stage>-<filename>.txt``), then reset."""
        report = f"{stage.upper()} Profiler Report\n{self.summary()}"
        if self.dirpath and self.filename:
            os.makedirs(self.dirpath, exist_ok=True)
            path = os.path.join(self.dirpath, f"{stage}-{self.filename}.txt")
            with open(path, "w") as handle:
                handle.write(report + "\n")
        else:
            print(report)
        self.reset()

    def reset(self) -> None:
        """Forget what was recorded (each stage reports its own actions)."""


class SimpleProfiler(Profiler):
    """Wall-clock duration of every action: mean, count, total and share of the stage."""

    def __init__(self, dirpath: Optional[str] = None, filename: Optional[str] = None) -> None:
        super().__init__(dirpath, filename)
        self.reset()

    def reset(self) -> None:
        self.recorded: Dict[str, List[float]] = defaultdict(list)
        self._started: Dict[str, float] = {}
        self._stage_start = time.monotonic()

    def start(self, action_name: str) -> None:
        if action_name in self._started:
            raise ValueError(f"Attempted to start {action_name} which has already started.")
        self._started[action_name] = time.monotonic()

    def stop(self, action_name: str) -> None:
        started = self._started.pop(action_name, None)
        if started is None:
            raise ValueError(
                f"Attempting to stop recording an action ({action_name}) which was never started."
            )
        self.recorded[action_name].append(time.monotonic() - started)

    def summary(self) -> str:
        total_time = max(time.monotonic() - self._stage_start, 1e-9)
        rows = sorted(self.recorded.items(), key=lambda item: -sum(item[1]))
        header = ["Action", "Mean duration (s)", "Num calls", "Total time (s)", "Percentage %"]
        table = [
            header,
            ["Total", "-", str(sum(len(d) for _, d in rows)), f"{total_time:.5}", "100 %"],
        ]
        for action, durations in rows:
            total = sum(durations)
            table.append(
                [
                    action,
                    f"{total / len(durations):.5}",
                    str(len(durations)),
                    f"{total:.5}",
                    f"{100 * total / total_time:.5}",
                ]
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = ["|  " + "\t|  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in table]
        rule = "-" * max(len(line) for line in lines)
        return "\n".join([rule, lines[0], rule, *lines[1:], rule])


class AdvancedProfiler(Profiler):
    """``cProfile`` per action; the report lists each action's top ``line_count_restriction``
    functions by cumulative time."""

    def __init__(
        self,
        dirpath: Optional[str] = None,
        filename: Optional[str] = None,
        line_count_restriction: float = 1.0,
    ) -> None:
        super().__init__(dirpath, filename)
        self.line_count_restriction = line_count_restriction
        self.reset()

    def reset(self) -> None:
        self.profiled_actions: Dict[str, cProfile.Profile] = {}

    def start(self, action_name: str) -> None:
        self.profiled_actions.setdefault(action_name, cProfile.Profile()).enable()

    def stop(self, action_name: str) -> None:
        profile = self.profiled_actions.get(action_name)
        if profile is None:
            raise ValueError(
                f"Attempting to stop recording an action ({action_name}) which was never started."
            )
        profile.disable()

    def summary(self) -> str:
        parts = []
        for action, profile in sorted(self.profiled_actions.items()):
            stream = io.StringIO()
            stats = pstats.Stats(profile, stream=stream).strip_dirs().sort_stats("cumulative")
            stats.print_stats(self.line_count_restriction)
            parts.append(f"Profile stats for: {action}\n{stream.getvalue()}")
        return "\n".join(parts)


PROFILERS = {"simple": SimpleProfiler, "advanced": AdvancedProfiler}


def resolve_profiler(profiler: Union[str, Profiler, None]) -> Optional[Profiler]:
    """``Trainer(profiler=...)`` as a Profiler instance (None: no profiling)."""
    if profiler is None or isinstance(profiler, Profiler):
        return profiler
    if isinstance(profiler, str) and profiler.lower() in PROFILERS:
        return PROFILERS[profiler.lower()]()
    raise MisconfigurationException(
        "When passing string value for the `profiler` parameter of `Trainer`, it can only be one "
        f"of {list(PROFILERS)}"
    )


def profiling(profiler: Optional[Profiler], action_name: str):
    """``profiler.profile(action_name)``, or a no-op context when there is no profiler."""
    return _NO_PROFILING if profiler is None else profiler.profile(action_name)
