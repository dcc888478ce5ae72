"""Times one loader in the current (fresh) process: time to first batch, images/s, peak RSS.

Every baseline module hands ``run_loader`` a factory that builds its dataset and loader, and a
function that counts the images in a batch. Peak memory (RSS and PSS) is sampled for the whole
process tree (this process plus worker processes, so torch's workers count as they should).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Iterable

class Unavailable(Exception):
    """The peer (or a piece of it this scenario needs) cannot run here; the message says why."""


def _tree_pids(root_pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    pids, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, ()))
    return pids


def _memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; PSS splits pages shared after fork among the sharers."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def tree_memory_bytes(root_pid: int) -> tuple[int, int]:
    """Summed (RSS, PSS) in bytes of ``root_pid`` and all its descendants."""
    rss = pss = 0
    for pid in _tree_pids(root_pid):
        r, p = _memory_kib(pid)
        rss, pss = rss + r, pss + p
    return rss * 1024, pss * 1024


class PeakMemory:
    """Samples RSS and PSS of this process tree every ``interval`` seconds in a daemon thread.

    Summed RSS counts pages that forked workers share with their parent once per process;
    PSS divides them among the sharers, so it is the fair figure for worker processes.
    """

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss, pss = tree_memory_bytes(os.getpid())
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def run_loader(make_loader: Callable[[], Iterable], batch_images: Callable[[object], int],
               seconds: float, min_batches: int = 3,
               loader_info: Callable[[object], dict] | None = None) -> dict:
    """Iterates a loader (epoch after epoch) for about ``seconds`` after its first batch.

    Args:
        make_loader: Builds the dataset and the loader (timed as part of time to first batch).
        batch_images: Number of images in one batch.
        seconds: Steady-state measuring time, after the first batch.
        min_batches: Measure at least this many batches whatever the time.
        loader_info: Optional; what the loader reports about itself (e.g. which path it ran),
            read at the end of the measurement and returned under ``loader``.

    Returns:
        ``setup_s`` (dataset + loader construction), ``first_batch_s`` (from then to the first
        batch), ``time_to_first_batch_s`` (their sum), ``images_per_s`` (after the first batch),
        ``images``, ``batches``, ``epochs``, ``measured_s``, ``peak_rss_mib`` / ``peak_pss_mib``
        (process tree) and ``baseline_rss_mib`` / ``baseline_pss_mib`` (before the loader was
        built: the interpreter and the libraries already imported).
    """
    baseline_rss, baseline_pss = tree_memory_bytes(os.getpid())
    with PeakMemory() as memory:
        start = time.perf_counter()
        loader = make_loader()
        built = time.perf_counter()
        images = batches = 0
        epochs = 0
        first_batch_at = None
        measure_from = None
        while True:
            epochs += 1
            got_any = False
            for batch in loader:
                got_any = True
                now = time.perf_counter()
                if first_batch_at is None:
                    first_batch_at = now
                    measure_from = now
                    continue
                images += batch_images(batch)
                batches += 1
                if now - measure_from >= seconds and batches >= min_batches:
                    break
            else:
                if not got_any:
                    raise RuntimeError("the loader produced no batch")
                continue
            break
        measured = time.perf_counter() - measure_from
        try:
            info = loader_info(loader) if loader_info is not None else {}
        except Exception as exc:  # the loader's self-report is extra information, not the result
            info = {"error": f"{type(exc).__name__}: {exc}"}
        del loader
    return {
        "setup_s": built - start,
        "first_batch_s": first_batch_at - built,
        "time_to_first_batch_s": first_batch_at - start,
        "images_per_s": images / measured if measured > 0 else 0.0,
        "images": images, "batches": batches, "epochs": epochs, "measured_s": measured,
        "peak_rss_mib": memory.peak_rss / 2**20, "peak_pss_mib": memory.peak_pss / 2**20,
        "baseline_rss_mib": baseline_rss / 2**20, "baseline_pss_mib": baseline_pss / 2**20,
        "loader": info,
    }
