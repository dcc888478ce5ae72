"""Python threads that finish native batches off the training thread, handed out in order.

The engine delivers batches (in its delivery order) to whoever asks; the Python part of a batch
(targets, transforms the engine cannot run, the user's collate) then runs here, on ``threads``
threads at once (torch ops release the GIL), so the consumer's ``next()`` only pops a finished
batch. Each taken batch gets the next sequence number under a lock, so results, errors and the
end of the epoch come out in exactly the order the engine delivered them, whatever thread
finished first: the batches are the same for any number of threads.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from conveyor.loader.worker_limits import use_one_intra_op_thread

# result kinds
BATCH, ERROR, END = "batch", "error", "end"


class FinishersClosed(Exception):
    """Raised by :meth:`OrderedFinishers.get` once :meth:`OrderedFinishers.stop` was called."""


class OrderedFinishers:
    """``threads`` daemon threads running ``finish(take())`` with results in take order.

    Args:
        threads: Number of finisher threads (>= 1).
        take: Returns the next item, or None at the end; called by one thread at a time. It may
            block (the native engine's ``next_batch`` releases the GIL while it waits).
        finish: Turns an item into a result; runs on several threads at once.
        capacity: Items taken and not yet handed out by :meth:`get`, at most (bounds memory).
        name: Thread name prefix (shown in debuggers and ``threading.enumerate()``).
    """

    def __init__(
        self,
        threads: int,
        take: Callable[[], Any],
        finish: Callable[[Any], Any],
        capacity: int,
        name: str = "conveyor-finisher",
    ) -> None:
        self._take = take
        self._finish = finish
        self._capacity = max(1, capacity)
        self._cond = threading.Condition()
        self._take_lock = threading.Lock()
        self._results: Dict[int, Tuple[str, Any]] = {}
        self._next_take = 0
        self._next_out = 0
        self._stopped = False
        self._threads: List[threading.Thread] = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        use_one_intra_op_thread()  # Python tails run torch ops here: keep the training step's cores
        while True:
            with self._cond:
                while not self._stopped and self._next_take - self._next_out >= self._capacity:
                    self._cond.wait()
                if self._stopped:
                    return
            with self._take_lock:
                if self._stopped:
                    return
                sequence = self._next_take
                self._next_take += 1
                try:
                    item = self._take()
                    kind = BATCH if item is not None else END
                except BaseException as error:  # handed to the consumer at this position
                    item, kind = error, ERROR
            if kind == BATCH:
                try:
                    item = self._finish(item)
                except BaseException as error:
                    item, kind = error, ERROR
            with self._cond:
                self._results[sequence] = (kind, item)
                self._cond.notify_all()
            if kind == END:
                return

    def get(self) -> Tuple[str, Any]:
        """The next result in take order: ``(BATCH, result)``, ``(ERROR, exception)`` or
        ``(END, None)`` (then again ``END`` on every later call).

        Raises:
            FinishersClosed: :meth:`stop` was called (before or while waiting).
        """
        with self._cond:
            while self._next_out not in self._results:
                if self._stopped:
                    raise FinishersClosed()
                self._cond.wait()
            kind, item = self._results[self._next_out]
            if kind != END:  # the end stays for every later caller
                del self._results[self._next_out]
                self._next_out += 1
            self._cond.notify_all()
            return kind, item

    @property
    def ready(self) -> int:
        """Finished results waiting to be taken."""
        with self._cond:
            return len(self._results)

    def stop(self, join_timeout: Optional[float] = None) -> None:
        """Stop taking items and wake every waiter. Threads blocked inside ``take`` return once
        it returns (the caller makes it return, e.g. by cancelling the engine's epoch)."""
        with self._cond:
            self._stopped = True
            self._results.clear()
            self._cond.notify_all()
        if join_timeout is not None:
            current = threading.current_thread()
            for thread in self._threads:
                if thread is not current:
                    thread.join(join_timeout)
