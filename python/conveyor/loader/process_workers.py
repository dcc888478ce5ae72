"""Process workers for ``conveyor.DataLoader(worker_mode="process")``: torch's own machinery.

Where per-sample Python dominates (a user's ``__getitem__``, Python transforms), threads share one
GIL and processes scale with the cores. Rather than a copy of torch's multiprocessing loader, this
*is* torch's ``_MultiProcessingDataLoaderIter``: its worker loop, shared-memory tensors,
``timeout``, ``worker_init_fn``, ``torch.utils.data.get_worker_info()``, ``persistent_workers``,
pinning thread, and its handling of a crash in ``__getitem__`` or of a killed worker (raised in the
parent, naming the worker). Only two things change:

- the indices come from conveyor's epoch stream (seeded shuffle, sharding, exact resume), through
  torch's single hook for them, ``_next_index``;
- each delivered batch is counted in ``loader.stats`` and in the loader's resume bookkeeping.

A conveyor dataset keeps decoding with conveyor's native codecs inside each worker process (its
``__getitem__`` reads and decodes natively).
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable, Deque, Iterator, Optional

from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter

from conveyor.loader.padding import record_padding
from conveyor.loader.stats import StatsRecorder


class EpochFeed:
    """What one epoch of a ``ProcessIterator`` reads from and reports to.

    Args:
        start: Called with the iterator's base seed when the first index is needed; returns the
            epoch's index stream (lists of indices, single indices, or an endless counter for an
            iterable dataset).
        stats: Counters shown by ``loader.stats``.
        on_batch: Called after each delivered batch (the loader's resume bookkeeping).
        on_end: Called once when the epoch ends normally.
        batch_size: Samples counted per batch when the stream does not say (iterable datasets).
        length: ``len()`` of the iterator (the loader's, which knows about sharding).
    """

    def __init__(
        self,
        start: Callable[[int], Iterator[Any]],
        stats: StatsRecorder,
        on_batch: Callable[[], None],
        on_end: Callable[[], None],
        batch_size: Optional[int],
        length: Callable[[], int],
    ) -> None:
        self.start = start
        self.length = length
        self.stats = stats
        self.on_batch = on_batch
        self.on_end = on_end
        self.batch_size = batch_size
        self.indices: Optional[Iterator[Any]] = None
        self.sizes: Deque[int] = collections.deque()  # samples of each batch sent, in order
        self.ended = False


class ProcessIterator(_MultiProcessingDataLoaderIter):
    """torch's multi-process iterator fed by conveyor's index stream.

    Args:
        loader: The ``conveyor.DataLoader``.
        feed: The first epoch's ``EpochFeed``; ``reset`` takes the next ones (persistent workers).
    """

    def __init__(self, loader: Any, feed: EpochFeed) -> None:
        self._feed = feed  # torch's __init__ already asks for indices (prefetch)
        # torch's iterator is not thread-safe: two threads in next() at once can both wait for
        # the same batch, and one then waits forever. One next() at a time: each batch goes to
        # exactly one caller (as on conveyor's thread paths).
        self._next_lock = threading.Lock()
        super().__init__(loader)

    def reset(self, loader: Any, feed: EpochFeed) -> None:
        """Start the next epoch on the same (persistent) worker processes."""
        self._feed = feed
        self._reset(loader)

    def _next_index(self) -> Any:
        feed = self._feed
        if feed.indices is None:
            feed.indices = feed.start(int(self._base_seed))
        index = next(feed.indices)  # StopIteration ends torch's prefetching
        if isinstance(index, (list, tuple)):
            feed.sizes.append(len(index))
        else:
            feed.sizes.append(feed.batch_size or 1)
        return index

    def __next__(self) -> Any:
        started = time.perf_counter()
        with self._next_lock:
            return self._next_counted(started)

    def _next_counted(self, started: float) -> Any:
        feed = self._feed
        try:
            batch = super().__next__()
        except StopIteration:
            if not feed.ended:
                feed.ended = True
                feed.on_end()
            raise
        except Exception:
            feed.on_batch()  # torch's epoch goes on after a failed batch; so does the count
            if feed.sizes:
                feed.sizes.popleft()
            raise
        samples = feed.sizes.popleft() if feed.sizes else (feed.batch_size or 1)
        feed.stats.record_batch(samples, time.perf_counter() - started)
        record_padding(batch, feed.stats)  # pad_to_multiple: padded in the worker processes
        feed.on_batch()
        return batch

    def __len__(self) -> int:
        return self._feed.length()

    def discard(self, count: int) -> None:
        """Read and drop ``count`` batches (resuming an iterable dataset mid-epoch)."""
        for _ in range(count):
            try:
                _MultiProcessingDataLoaderIter.__next__(self)
            except StopIteration:
                return
            if self._feed.sizes:
                self._feed.sizes.popleft()

    def close(self) -> None:
        """Stop the worker processes now (a new ``iter(loader)`` or the loader's end)."""
        self._shutdown_workers()
