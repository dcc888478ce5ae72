"""The worker threads of the generic (Python dataset) path of ``conveyor.DataLoader``.

``num_workers`` means threads here, not processes: nothing is pickled and startup is instant,
while user ``__getitem__`` code still runs under the GIL (decoding in Pillow/torchvision and
tensor ops release it, so threads still overlap most of the work). Threads are daemons, so a
``__getitem__`` stuck forever can never block interpreter exit; but at exit every pool is
stopped and its threads joined (for up to ``EXIT_JOIN_TIMEOUT_S``) before the interpreter
finalises: a daemon thread still inside a torch kernel then would re-take the GIL during
finalisation and abort the process ("terminate called without an active exception"), which
Ctrl-C or a script that returns mid-epoch must never do.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

from conveyor.loader.worker_limits import use_one_intra_op_thread

_local = threading.local()

# Seconds the exit hook waits in total for worker threads to finish their current item.
EXIT_JOIN_TIMEOUT_S = 60.0
_live_pools: "weakref.WeakSet[WorkerPool]" = weakref.WeakSet()
_live_threads: "set[threading.Thread]" = set()  # also those of collected (shut down) pools
_live_lock = threading.Lock()
# a queued call: (its future, the callable, its arguments); None tells a thread to stop
_Task = Tuple["Future[Any]", Callable[..., Any], Tuple[Any, ...]]


def _stop_workers_at_exit() -> None:
    """Stops every pool and joins every worker thread before interpreter finalisation."""
    for pool in list(_live_pools):
        pool.shutdown()
    with _live_lock:
        threads = list(_live_threads)
    deadline = time.monotonic() + EXIT_JOIN_TIMEOUT_S
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


atexit.register(_stop_workers_at_exit)


@dataclass(frozen=True)
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a conveyor worker thread.

    Attributes:
        id: The worker's index in ``[0, num_workers)``.
        num_workers: Number of worker threads of the loader.
        seed: ``base_seed + id``, as torch gives each worker process.
        dataset: The loader's dataset (shared by all threads: it is not a copy).
    """

    id: int
    num_workers: int
    seed: int
    dataset: Any


def get_worker_info() -> Optional[WorkerInfo]:
    """The calling conveyor worker thread's info, or ``None`` outside worker threads.

    ``torch.utils.data.get_worker_info()`` keeps returning ``None`` in conveyor threads (it is
    a per-process global in torch); use this function where a dataset wants to know its thread.

    Returns:
        The ``WorkerInfo`` of the current thread, or ``None``.
    """
    return getattr(_local, "info", None)


class WorkerPool:
    """A fixed set of daemon threads running submitted callables, each result in a ``Future``.

    Args:
        num_workers: Number of threads (at least 1).
        dataset: Passed on through ``WorkerInfo``.
        base_seed: ``WorkerInfo.seed`` is ``base_seed + worker id``.
        worker_init_fn: Called once as ``worker_init_fn(worker_id)`` at the start of each thread;
            if it raises, every task submitted to that thread fails with that exception.
        name: Thread name prefix (shows in debuggers and ``threading.enumerate()``).
    """

    def __init__(
        self,
        num_workers: int,
        dataset: Any,
        base_seed: int,
        worker_init_fn: Optional[Callable[[int], None]] = None,
        name: str = "conveyor-worker",
    ) -> None:
        self._tasks: "queue.SimpleQueue[Optional[_Task]]" = queue.SimpleQueue()
        self._closed = False
        self.threads = [
            threading.Thread(
                target=_run_worker,
                args=(
                    self._tasks,
                    WorkerInfo(i, num_workers, base_seed + i, dataset),
                    worker_init_fn,
                ),
                name=f"{name}-{i}",
                daemon=True,
            )
            for i in range(num_workers)
        ]
        with _live_lock:
            _live_threads.update(self.threads)
        _live_pools.add(self)
        for thread in self.threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue ``fn(*args)`` for the next free thread.

        Args:
            fn: The callable.
            *args: Its arguments.

        Returns:
            A future holding the result or the exception.
        """
        if self._closed:
            raise RuntimeError("cannot submit to a closed WorkerPool")
        future: Future[Any] = Future()
        self._tasks.put((future, fn, args))
        return future

    def shutdown(self) -> None:
        """Stop the threads once their current task ends; queued tasks are cancelled.

        Never waits: a thread busy in user code finishes that item and exits.
        """
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                task[0].cancel()
        for _ in self.threads:
            self._tasks.put(None)

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait for the threads to end (after ``shutdown``).

        Args:
            timeout: Seconds to wait in total, or None to wait forever.

        Returns:
            True when every thread has ended.
        """
        for thread in self.threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self.threads)

    def __del__(self) -> None:
        self.shutdown()


def _run_worker(
    tasks: "queue.SimpleQueue[Optional[_Task]]",
    info: WorkerInfo,
    worker_init_fn: Optional[Callable[[int], None]],
) -> None:
    # The thread references only the queue and its info, never the pool or the loader, so
    # dropping the last user reference to those shuts the pool down through __del__.
    try:
        _serve(tasks, info, worker_init_fn)
    finally:
        with _live_lock:
            _live_threads.discard(threading.current_thread())


def _serve(
    tasks: "queue.SimpleQueue[Optional[_Task]]",
    info: WorkerInfo,
    worker_init_fn: Optional[Callable[[int], None]],
) -> None:
    _local.info = info
    use_one_intra_op_thread()  # torch ops here must not compete with the training step's team
    init_error: Optional[BaseException] = None
    if worker_init_fn is not None:
        try:
            worker_init_fn(info.id)
        except BaseException as error:  # reported through every task of this thread
            init_error = error
    while True:
        task = tasks.get()
        if task is None:
            return
        future, fn, args = task
        if not future.set_running_or_notify_cancel():
            continue
        if init_error is not None:
            future.set_exception(init_error)
            continue
        try:
            future.set_result(fn(*args))
        except BaseException as error:
            future.set_exception(error)
        del task, future, fn, args
