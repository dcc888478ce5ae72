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
    """``root_pid`` and its descendants, from each thread's ``children`` file: only this tree
    is read, not every process on the machine (cheap enough to sample in the measured process)."""
    pids, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:  # exited meanwhile
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    stack.extend(int(child) for child in f.read().split())
            except (OSError, ValueError):
                continue
    return pids


def _rss_kib(pid: int) -> int:
    """Resident set of one process in KiB (``/proc/PID/status``: cheap, no page-table walk)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


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


def tree_rss_bytes(root_pid: int) -> int:
    """Summed RSS in bytes of ``root_pid`` and all its descendants (the cheap reading)."""
    return 1024 * sum(_rss_kib(pid) for pid in _tree_pids(root_pid))


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU seconds (user + system) used so far by ``root_pid``, its exited children it waited
    for, and its live descendants: with the wall clock, what a shared machine cannot skew."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in _tree_pids(root_pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if pid == root_pid:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped workers
        total += ticks / tick
    return total


class PeakMemory:
    """Peak RSS and PSS of this process tree, sampled in a daemon thread.

    RSS (``/proc/PID/status``, microseconds to read) is sampled every ``interval`` seconds;
    PSS needs ``smaps_rollup``, a walk of every page table (about 1 ms per GiB resident), so it
    is read every ``pss_every`` samples. Summed RSS counts pages that forked workers share with
    their parent once per process; PSS divides them among the sharers, so it is the fair
    figure for worker processes. The sampler runs inside the measured process: it must stay
    cheap (walking all of /proc every 50 ms cost ~7% of a core).
    """

    def __init__(self, interval: float = 0.05, pss_every: int = 4):
        self.interval = interval
        self.pss_every = pss_every
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, with_pss: bool = True) -> None:
        if with_pss:
            rss, pss = tree_memory_bytes(os.getpid())
            self.peak_pss = max(self.peak_pss, pss)
        else:
            rss = tree_rss_bytes(os.getpid())
        self.peak_rss = max(self.peak_rss, rss)

    def _run(self) -> None:
        count = 0
        while not self._stop.is_set():
            self._sample(with_pss=count % self.pss_every == 0)
            count += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def run_loader(
    make_loader: Callable[[], Iterable],
    batch_images: Callable[[object], int],
    seconds: float,
    min_batches: int = 3,
    loader_info: Callable[[object], dict] | None = None,
) -> dict:
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
        ``images``, ``batches``, ``epochs``, ``measured_s``, ``cpu_s`` / ``cpu_ms_per_image``
        (CPU time of the process tree while measuring), ``peak_rss_mib`` / ``peak_pss_mib``
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
                    cpu_from = tree_cpu_seconds(os.getpid())
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
        cpu_seconds = tree_cpu_seconds(os.getpid()) - cpu_from
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
        "images": images,
        "batches": batches,
        "epochs": epochs,
        "measured_s": measured,
        "cpu_s": cpu_seconds,
        "cpu_ms_per_image": 1000 * cpu_seconds / images if images else None,
        "peak_rss_mib": memory.peak_rss / 2**20,
        "peak_pss_mib": memory.peak_pss / 2**20,
        "baseline_rss_mib": baseline_rss / 2**20,
        "baseline_pss_mib": baseline_pss / 2**20,
        "loader": info,
    }
