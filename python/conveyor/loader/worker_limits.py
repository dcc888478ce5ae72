"""How much of the machine conveyor's workers may take from the training process.

Two mechanisms, both about threads that live *inside* the training process:

- **One intra-op thread per worker thread.** torch's CPU ops parallelise with OpenMP. An OpenMP
  team belongs to the thread that opens the parallel region, so every worker thread that runs a
  torch op (a v2 transform, a user collate) gets its own team of ``torch.get_num_threads()``
  threads, and those teams spin-wait after each op. With 2 workers on 2 cores that is 3 teams
  fighting the training step's team: the model step slows down although the loader keeps up.
  torch's process workers avoid it with ``torch.set_num_threads(1)`` in each worker process;
  in a thread that call would be process-wide (it also changes the default of every new thread
  and MKL's count), so conveyor sets the OpenMP limit of the worker thread alone
  (``omp_set_num_threads`` acts on the calling thread's ICV) after torch's per-thread
  initialisation. The training thread keeps its full team.
- **A cap for shared machines.** ``CONVEYOR_MAX_WORKERS=N`` limits every ``conveyor.DataLoader``
  of the process to ``N`` workers (native threads, Python threads or processes), whatever
  ``num_workers`` says: e.g. 8 GPU processes on a 64-core node with ``CONVEYOR_MAX_WORKERS=6``
  plus ``OMP_NUM_THREADS=2`` stay within the cores. ``loader.stats.num_workers`` shows the count
  that ran.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Callable, Optional

import torch

MAX_WORKERS_ENV = "CONVEYOR_MAX_WORKERS"

_lock = threading.Lock()
_omp_setter: Optional[Callable[[int], None]] = None
_omp_searched = False


def max_workers() -> Optional[int]:
    """The ``CONVEYOR_MAX_WORKERS`` cap, or ``None`` when unset.

    Raises:
        ValueError: The variable is set but is not a non-negative integer.
    """
    text = os.environ.get(MAX_WORKERS_ENV, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{MAX_WORKERS_ENV} should be a non-negative integer, but got {text!r}")
    return value


def effective_workers(num_workers: int) -> int:
    """``num_workers`` capped by ``CONVEYOR_MAX_WORKERS`` (at least 1 when workers were asked)."""
    cap = max_workers()
    if cap is None or num_workers == 0:
        return num_workers
    return max(1, min(num_workers, cap))


def _find_omp_setter() -> Optional[Callable[[int], None]]:
    # the OpenMP runtime torch already loaded (its own libgomp, or Intel's / LLVM's)
    global _omp_setter, _omp_searched
    with _lock:
        if _omp_searched:
            return _omp_setter
        _omp_searched = True
        if "OpenMP" not in torch.__config__.parallel_info():
            return None
        try:
            with open("/proc/self/maps") as maps:
                paths = {line.split()[-1] for line in maps if ".so" in line}
        except OSError:
            return None
        for path in sorted(paths):
            name = os.path.basename(path)
            if name.startswith(("libgomp", "libiomp5", "libomp")):
                try:
                    _omp_setter = ctypes.CDLL(path).omp_set_num_threads
                    return _omp_setter
                except (OSError, AttributeError):
                    continue
        return None


def use_one_intra_op_thread() -> bool:
    """Make torch ops called from the current thread run single-threaded (this thread only).

    Call it at the start of a worker thread. The training thread and threads created later keep
    torch's setting.

    Returns:
        True when the limit is in place (torch uses OpenMP and its runtime was found).
    """
    torch.get_num_threads()  # torch's lazy per-thread setup first: it would reset the limit
    setter = _find_omp_setter()
    if setter is None:
        return False
    setter(1)
    return True
