"""The generic path of ``conveyor.DataLoader``: any map-style or iterable Python dataset.

Samples are fetched and collated with torch's semantics (``__getitems__`` when the dataset has
it, ``default_collate`` unless told otherwise), in the calling thread (``num_workers=0``) or in
worker threads, and handed out in order with at most ``num_workers * prefetch_factor`` batches
in flight.
"""

from __future__ import annotations

import collections
import concurrent.futures
import time
import warnings
from typing import Any, Callable, Deque, Iterator, List, Optional, Union

import torch

from conveyor.loader.stats import StatsRecorder
from conveyor.loader.worker_threads import WorkerPool

_END = object()  # an iterable dataset ran out


class LoaderTimeoutError(RuntimeError):
    """No batch arrived within the loader's ``timeout`` (a ``RuntimeError``, as in torch)."""


def describe_sample(dataset: Any, index: Any) -> str:
    """``"sample index 7 (file /x/JPEGImages/a.jpg)"``: names the file when the dataset knows it."""
    text = f"sample index {index}"
    images = getattr(dataset, "images", None)
    if isinstance(index, int) and isinstance(images, (list, tuple)) and 0 <= index < len(images):
        text += f" (file {images[index]})"
    return text


def annotate(error: BaseException, message: str) -> None:
    """Add ``message`` as a note to ``error`` (shown under its traceback), once."""
    if hasattr(error, "add_note"):
        notes = getattr(error, "__notes__", [])
        if message not in notes:
            error.add_note(message)


class MapFetcher:
    """Turns one entry of the index stream into a batch (or a sample when not batching).

    Args:
        dataset: A map-style dataset.
        auto_collation: True when the index stream yields lists of indices.
        collate_fn: Applied to the list of samples (or to the single sample).
        on_error: ``"raise"`` or ``"skip"``.
        pin: ``None``, or the device type to pin batches for.
    """

    def __init__(
        self,
        dataset: Any,
        auto_collation: bool,
        collate_fn: Callable[[Any], Any],
        on_error: str,
        pin: Optional[str],
    ) -> None:
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.on_error = on_error
        self.pin = pin

    def __call__(self, batch_number: int, indices: Any, stats: StatsRecorder) -> Any:
        """Load, collate (and pin) one batch.

        Returns:
            ``(batch, number of samples)``; batch is ``None`` when every sample was skipped.
        """
        if not self.auto_collation:
            try:
                sample = self.dataset[indices]
            except Exception as error:
                if self.on_error == "skip":
                    stats.record_skip(indices, f"{type(error).__name__}: {error}")
                    return None, 0
                annotate(
                    error,
                    f"conveyor.DataLoader: raised while loading "
                    f"{describe_sample(self.dataset, indices)} (batch {batch_number})",
                )
                raise
            return self._finish(self.collate_fn(sample)), 1
        samples = self._load_all(batch_number, list(indices), stats)
        if not samples:
            return None, 0
        return self._finish(self.collate_fn(samples)), len(samples)

    def _load_all(self, batch_number: int, indices: List[int], stats: StatsRecorder) -> List[Any]:
        getitems = getattr(self.dataset, "__getitems__", None)
        if getitems:
            try:
                return list(getitems(indices))
            except Exception as error:
                if self.on_error != "skip":
                    annotate(
                        error,
                        f"conveyor.DataLoader: raised by __getitems__ for sample "
                        f"indices {indices} (batch {batch_number})",
                    )
                    raise
                # fall through: find the bad samples one by one
        samples = []
        for index in indices:
            try:
                samples.append(self.dataset[index])
            except Exception as error:
                if self.on_error == "skip":
                    stats.record_skip(index, f"{type(error).__name__}: {error}")
                    continue
                annotate(
                    error,
                    f"conveyor.DataLoader: raised while loading "
                    f"{describe_sample(self.dataset, index)} (batch {batch_number})",
                )
                raise
        return samples

    def _finish(self, batch: Any) -> Any:
        if self.pin is not None:
            from torch.utils.data._utils.pin_memory import pin_memory

            batch = pin_memory(batch, self.pin)  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        return batch


class IterableFetcher:
    """Pulls the next batch from an iterable dataset's iterator (torch's ``_IterableDatasetFetcher``).

    Calls are serialised (one worker thread at most), so the dataset's iterator is never
    advanced from two threads at once.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: Optional[int],
        drop_last: bool,
        collate_fn: Callable[[Any], Any],
        pin: Optional[str],
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        self.pin = pin
        self.iterator: Optional[Iterator[Any]] = None
        self.ended = False

    def __call__(self, batch_number: int, _indices: Any, _stats: StatsRecorder) -> Any:
        if self.ended:
            return _END, 0
        if self.iterator is None:
            self.iterator = iter(self.dataset)
        if self.batch_size is None:
            try:
                sample = next(self.iterator)
            except StopIteration:
                self.ended = True
                return _END, 0
            return self._finish(self.collate_fn(sample)), 1
        samples = []
        for _ in range(self.batch_size):
            try:
                samples.append(next(self.iterator))
            except StopIteration:
                self.ended = True
                break
        if not samples or (self.drop_last and len(samples) < self.batch_size):
            self.ended = True
            return _END, 0
        return self._finish(self.collate_fn(samples)), len(samples)

    def _finish(self, batch: Any) -> Any:
        if self.pin is not None:
            from torch.utils.data._utils.pin_memory import pin_memory

            batch = pin_memory(batch, self.pin)  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        return batch


class GenericIterator:
    """One epoch over a Python dataset. Created by ``DataLoader.__iter__``.

    Args:
        fetcher: A ``MapFetcher`` or ``IterableFetcher``.
        index_stream: Batches of indices (map-style) or an endless counter (iterable).
        pool: Worker threads, or ``None`` to work in the calling thread.
        owns_pool: Shut the pool down when the epoch ends (not for persistent workers).
        in_flight: Most batches queued or being prepared at once.
        timeout: Seconds to wait for one batch (0: forever).
        in_order: Deliver batches in sampler order (False: as soon as ready).
        stats: Counters shown by ``loader.stats``.
        on_batch: Called after each delivered batch (the loader's resume bookkeeping).
        on_end: Called once when the epoch ends normally.
        length: Computes ``len()`` of the iterator (torch's ``len(loader)``), on demand.
        len_called: For an iterable dataset, the ``len(dataset)`` seen by an earlier
            ``len(loader)`` (None if never called): like torch, warn once more batches came.
    """

    def __init__(
        self,
        fetcher: Union[MapFetcher, IterableFetcher],
        index_stream: Iterator[Any],
        pool: Optional[WorkerPool],
        owns_pool: bool,
        in_flight: int,
        timeout: float,
        in_order: bool,
        stats: StatsRecorder,
        on_batch: Callable[[], None],
        on_end: Callable[[], None],
        length: Callable[[], int],
        len_called: Optional[int] = None,
    ) -> None:
        self._fetcher = fetcher
        self._indices = index_stream
        self._pool = pool
        self._owns_pool = owns_pool
        self._in_flight = max(1, in_flight)
        self._timeout = timeout
        self._in_order = in_order
        self._stats = stats
        self._on_batch = on_batch
        self._on_end = on_end
        self._length = length
        self._len_called = len_called
        self._yielded = 0
        self._pending: Deque[concurrent.futures.Future[Any]] = collections.deque()
        self._batch_number = 0
        self._exhausted = False
        self._done = False

    def __iter__(self) -> "GenericIterator":
        return self

    def __len__(self) -> int:
        return self._length()

    def __next__(self) -> Any:
        while True:
            if self._done:
                raise StopIteration
            started = time.perf_counter()
            try:
                batch, count = (
                    self._next_in_thread() if self._pool is None else self._next_from_pool()
                )
            except StopIteration:
                self._finish(ended=True)
                raise
            except LoaderTimeoutError:
                raise  # the batch is still coming: a retry gets it
            except Exception:
                # Like torch, the epoch may go on after a failed batch; an abandoned iterator
                # releases its threads in __del__.
                self._on_batch()
                raise
            except BaseException:
                self._finish(ended=False)
                raise
            if batch is _END:
                self._finish(ended=True)
                raise StopIteration
            if batch is None:  # every sample of this batch was skipped
                self._on_batch()
                continue
            self._stats.record_batch(count, time.perf_counter() - started)
            self._on_batch()
            self._yielded += 1
            if self._len_called is not None and self._yielded > self._len_called:
                warnings.warn(
                    f"Length of IterableDataset {self._fetcher.dataset} was reported "
                    f"to be {self._len_called}(when accessing len(dataloader)), but "
                    f"{self._yielded} samples have been fetched. ",
                    stacklevel=2,
                )
            return batch

    def _take_indices(self) -> Any:
        indices = next(self._indices)
        number = self._batch_number
        self._batch_number += 1
        return number, indices

    def _next_in_thread(self) -> Any:
        number, indices = self._take_indices()
        return self._fetcher(number, indices, self._stats)

    def _fill(self) -> None:
        pool = self._pool
        assert pool is not None, "_fill runs only with a worker pool"
        while not self._exhausted and len(self._pending) < self._in_flight:
            try:
                number, indices = self._take_indices()
            except StopIteration:
                self._exhausted = True
                break
            self._pending.append(pool.submit(self._fetcher, number, indices, self._stats))
        self._stats.queue_depth = sum(1 for f in self._pending if f.done())

    def _next_from_pool(self) -> Any:
        self._fill()
        if not self._pending:
            raise StopIteration
        timeout = self._timeout if self._timeout > 0 else None
        if self._in_order:
            future = self._pending[0]
        else:
            done, _ = concurrent.futures.wait(
                self._pending, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED
            )
            future = next((f for f in self._pending if f in done), self._pending[0])
        try:
            future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise LoaderTimeoutError(
                f"DataLoader timed out after {self._timeout} seconds"
            ) from None
        except BaseException:
            pass  # raised below, once the batch has left the queue
        self._pending.remove(future)
        self._fill()
        return future.result()

    def _finish(self, ended: bool) -> None:
        if self._done:
            return
        self._done = True
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._owns_pool and self._pool is not None:
            self._pool.shutdown()
        if ended:
            self._on_end()

    def close(self) -> None:
        """Stop early: cancel queued batches and release the worker threads."""
        self._finish(ended=False)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


def warn_pin_memory(pin_memory: bool, pin_memory_device: str) -> Optional[str]:
    """torch's pin_memory checks at iterator creation; returns the device type to pin for, if any."""
    if pin_memory and pin_memory_device:
        warnings.warn(
            "pin_memory_device is deprecated, the current accelerator will be used as the device,"
            f"ignore pin_memory_device='{pin_memory_device}'.",
            stacklevel=3,
        )
    if not pin_memory:
        return None
    if not torch.accelerator.is_available():
        warnings.warn(
            "'pin_memory' argument is set as true but no accelerator is found, "
            "then device pinned memory won't be used.",
            stacklevel=3,
        )
        return None
    accelerator = torch.accelerator.current_accelerator()
    if accelerator is None or accelerator.type == "mps":
        return None
    return accelerator.type
