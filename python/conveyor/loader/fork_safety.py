"""Native engines across ``fork()``: what a forked child (a torch worker process) does with them.

The mechanism (found with py-spy on a hung worker process): torch's worker processes are forked
from the training process, which may hold a live ``conveyor._core.Engine`` (a loader on the native
path, alive or dropped but not yet collected). ``fork()`` copies the engine -- its
``std::thread`` handles, its mutexes and its condition variables, with the parent's worker
threads registered as waiters -- but none of its threads. When the child later frees that copy
(the cyclic GC collecting a loader the parent had dropped, or a ``__del__`` closing it),
``~Engine`` joins threads that do not exist in the child and destroys condition variables whose
waiters will never leave (glibc's ``pthread_cond_destroy`` waits for them): the worker hangs
forever in ``__getitem__``, and the parent waits forever for its batch.

The fix: right after ``fork()``, in the child, every engine inherited from the parent is
disowned. Its native object is kept alive for the rest of the child's life, never destroyed
there (torch's workers end with ``os._exit``, so nothing runs at exit either), and the Python
wrapper gets a stand-in whose ``close()``/``cancel()`` do nothing (nothing of it runs in the
child) and whose other methods raise a clear error. The parent's engine is untouched.
"""

from __future__ import annotations

import gc
import os
import weakref
from typing import Any, List

_live: "weakref.WeakSet[Any]" = weakref.WeakSet()  # wrappers whose ._native owns native threads
_inherited: List[Any] = []  # native objects copied by fork(): never destroyed in this process


def track_native_threads(owner: Any) -> None:
    """Register ``owner`` (an object whose ``_native`` attribute owns native threads, such as
    ``conveyor.loader.engine.Engine``) to be disowned in a child process after ``fork()``."""
    _live.add(owner)


class InheritedEngine:
    """Stands in for a native engine in a process forked from the one that created it."""

    def __init__(self, kind: str, parent_pid: int) -> None:
        self._kind = kind
        self._parent_pid = parent_pid

    def close(self) -> None:
        """Nothing to stop: the engine's threads stayed in the parent process."""

    def cancel(self, ticket: int) -> bool:
        """No epoch of this engine runs in this process, so none is cancelled."""
        return False

    def live_buffer_ids(self) -> List[int]:
        """No batch of this engine is in flight in this process."""
        return []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy/pickle probing for optional protocols
            raise AttributeError(name)
        raise RuntimeError(
            f"conveyor: this {self._kind} was created in process {self._parent_pid} and copied "
            f"into process {os.getpid()} by fork(); its native threads did not come along, so "
            f"it cannot run here ({name}). Create the loader in this process instead (e.g. in "
            "worker_init_fn, or with multiprocessing's 'spawn' or 'forkserver' start method)."
        )


def _disown_in_child() -> None:
    # Runs in the child right after fork(), before any other Python code. No collection may
    # run before the natives are safe: one would free an inherited engine (the hang above).
    enabled = gc.isenabled()
    gc.disable()
    try:
        parent = os.getppid()
        for owner in list(_live):
            native = owner.__dict__.get("_native")
            if native is None or isinstance(native, InheritedEngine):
                continue
            _inherited.append(native)
            owner._native = InheritedEngine(type(owner).__name__, parent)
        _live.clear()
    finally:
        if enabled:
            gc.enable()


os.register_at_fork(after_in_child=_disown_in_child)
