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

What the worker processes index is a ``WorkerDataset`` around the user's dataset (torch's
``get_worker_info().dataset`` is still the user's dataset): it loads a batch with the same error
notes as conveyor's threads (which sample index and file failed), and, for a conveyor VOC dataset
the engine can run, runs that native pipeline inside the worker: a single-threaded engine per
worker decodes and transforms natively and the Python part (a transform tail, targets, the
user's collate) runs after it there, with random draws from ``(seed, epoch, sample index)``, so
batches are bit-identical to thread mode's.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time
import types
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional

import torch.utils.data as tud
from torch.utils.data._utils import worker as torch_worker
from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter

from conveyor.loader.engine import IndexBatches
from conveyor.loader.generic_path import MapFetcher
from conveyor.loader.padding import record_padding
from conveyor.loader.stats import StatsRecorder


class IndexBatch(List[int]):
    """One batch of sample indices on its way to a worker process (through torch's index
    queue), with what the worker needs besides them.

    Attributes:
        epoch: The epoch (seeds the native random augmentations).
        number: The batch's position in the epoch (named in error notes).
        seed: The loader's seed (drawn by torch's iterator after the workers started).
    """

    def __init__(self, indices: Any, epoch: int, number: int, seed: Optional[int]) -> None:
        super().__init__(indices)
        self.epoch = epoch
        self.number = number
        self.seed = seed


def already_collated(batch: Any) -> Any:
    """torch's collate step in the workers: ``WorkerDataset`` returns finished batches."""
    return batch


class WorkerDataset(tud.Dataset[Any]):
    """What torch's worker processes index: loads and collates whole batches.

    Args:
        dataset: The user's map-style dataset.
        collate_fn: The loader's collate (already wrapped for ``pad_to_multiple``).
        native: The loader's ``NativeSetup`` when the engine runs its pipeline, else None.
        on_error: ``"raise"`` (process workers do not skip).
        pad_to_multiple: For the native batches (``BatchBuilder`` pads them).
    """

    def __init__(
        self,
        dataset: Any,
        collate_fn: Callable[[Any], Any],
        native: Any = None,
        on_error: str = "raise",
        pad_to_multiple: Optional[int] = None,
    ) -> None:
        self.dataset = dataset
        self.collate_fn = collate_fn
        # the parent's engine never goes to the workers: each creates its own
        self.native: Any = None if native is None else dataclasses.replace(native, engine=None)
        self.on_error = on_error
        self.pad_to_multiple = pad_to_multiple
        self._fetcher = MapFetcher(dataset, True, collate_fn, on_error, None)
        self._engine: Any = None
        self._engine_key: Any = None
        self._builder: Any = None

    def __getstate__(self) -> Dict[str, Any]:
        # pickled for the 'spawn' and 'forkserver' start methods: ops as their dicts (the
        # engine takes either), and no engine of this process
        state = self.__dict__.copy()
        state.update(_engine=None, _engine_key=None, _builder=None)
        native = state["native"]
        if native is not None:
            ops = [op.to_dict() if hasattr(op, "to_dict") else op for op in native.plan.ops]
            plan = dataclasses.replace(native.plan, ops=ops)
            state["native"] = dataclasses.replace(native, plan=plan)
        return state

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: Any) -> Any:  # batch_size=None: one sample, torch's convert
        return MapFetcher(self.dataset, False, self.collate_fn, self.on_error, None)(
            -1, index, StatsRecorder(path="python", epoch=-1)
        )[0]

    def __getitems__(self, indices: Any) -> Any:
        number = getattr(indices, "number", -1)
        if self.native is not None:
            return self._native_batch(indices)
        return self._fetcher(number, list(indices), StatsRecorder(path="python", epoch=-1))[0]

    def _native_batch(self, indices: IndexBatch) -> Any:
        from conveyor.loader.native_batch import BatchBuilder
        from conveyor.loader.native_path import create_engine

        key = (os.getpid(), indices.seed)
        if self._engine is None or self._engine_key != key:
            settings = types.SimpleNamespace(  # one engine per worker, in the calling thread
                dataset=self.dataset,
                num_workers=0,
                prefetch_factor=1,
                seed=indices.seed,
                in_order=True,
                on_error=self.on_error,
            )
            self._engine = create_engine(settings, self.native)
            self._engine_key = key
            self._builder = BatchBuilder(
                self.native,
                self.dataset,
                self.collate_fn,
                self.on_error,
                StatsRecorder(path="native", epoch=-1),
                None,
                lambda: None,
                pad_to_multiple=self.pad_to_multiple,
            )
        # the batch at its own position, so the engine's and the builder's notes name it
        batches = IndexBatches.of([[]] * indices.number + [list(indices)])
        ticket = self._engine.start_epoch(
            indices.epoch,
            batches,
            start_batch=indices.number,
            pad_to_multiple=self._builder.engine_padding(),  # padded in the engine, as in threads
        )
        batch = self._engine.next_batch(ticket)
        return self._builder.build(batch)[0]


class WorkerInit:
    """The workers' ``worker_init_fn``: ``get_worker_info().dataset`` becomes the user's
    dataset (torch set it to the ``WorkerDataset`` around it), then the user's function runs."""

    def __init__(self, dataset: Any, user_fn: Optional[Callable[[int], None]]) -> None:
        self.dataset = dataset
        self.user_fn = user_fn

    def __call__(self, worker_id: int) -> None:
        info = torch_worker._worker_info
        if info is not None:
            torch_worker._worker_info = dataclasses.replace(info, dataset=self.dataset)
        if self.user_fn is not None:
            self.user_fn(worker_id)


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
        epoch: The epoch's number.
        first_batch: Number of the stream's first batch (mid-epoch resume).
        seed: The loader's seed once ``start`` set it.
    """

    def __init__(
        self,
        start: Callable[[int], Iterator[Any]],
        stats: StatsRecorder,
        on_batch: Callable[[], None],
        on_end: Callable[[], None],
        batch_size: Optional[int],
        length: Callable[[], int],
        epoch: int = 0,
        first_batch: int = 0,
        seed: Callable[[], Optional[int]] = lambda: None,
    ) -> None:
        self.start = start
        self.epoch = epoch
        self.next_number = first_batch
        self.seed = seed
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
            if self._auto_collation:  # a batch for WorkerDataset (else a user's key: as given)
                index = IndexBatch(index, feed.epoch, feed.next_number, feed.seed())
            feed.next_number += 1
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
