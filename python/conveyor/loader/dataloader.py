"""``conveyor.DataLoader``: a drop-in for ``torch.utils.data.DataLoader``.

It *is* a ``torch.utils.data.DataLoader`` (subclass: same constructor, same validation errors,
same attributes, ``isinstance`` checks in other libraries keep working), with two ways to run:

- the native path: a conveyor VOC dataset whose transforms conveyor recognises runs end to end
  in the C++ engine (read, decode, transform, batch; no GIL);
- the generic path: any other map-style or iterable dataset, fetched and collated with torch's
  semantics.

Workers are threads or torch's worker processes (``worker_mode``; ``"auto"`` picks threads for
fully native pipelines, processes where Python runs per sample); 0 workers: the calling thread.
"""

from __future__ import annotations

import itertools
import math
import sys
import warnings
import weakref
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sized,
    Tuple,
    TypeVar,
    Union,
    cast,
)

import torch
import torch.utils.data as tud

from conveyor.loader.engine import IndexBatches
from conveyor.loader.generic_path import (
    GenericIterator,
    IterableFetcher,
    MapFetcher,
    warn_pin_memory,
)
from conveyor.loader.native_batch import collate_kind
from conveyor.loader.native_path import NativeIterator, NativeSetup, create_engine, plan_native
from conveyor.loader.padding import PaddingCollate, check_pad_to_multiple
from conveyor.loader.process_workers import (
    EpochFeed,
    ProcessIterator,
    WorkerDataset,
    WorkerInit,
    already_collated,
)
from conveyor.loader.sampling import (
    SeededShuffleSampler,
    batch_indices,
    epoch_snapshot,
    replays_epoch,
    restore_snapshot,
    shard_indices,
    sharded_length,
    unconsumed_order,
    validate_shard,
)
from conveyor.loader.stats import LoaderStats, StatsRecorder
from conveyor.loader.worker_limits import effective_workers
from conveyor.loader.worker_threads import WorkerPool, get_worker_info

__all__ = ["DataLoader", "LoaderStats", "get_worker_info"]

_ON_ERROR = ("raise", "skip")
_WORKER_MODES = ("thread", "process", "auto")
_STATE_VERSION = 1

_T_co = TypeVar("_T_co", covariant=True)


def _free_threaded() -> bool:
    """True on a free-threaded interpreter (3.13t and later) running without the GIL."""
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return is_gil_enabled is not None and not is_gil_enabled()


class _WorkerView:
    """The loader as torch's process iterator sees it: ``num_workers`` capped, and for a map-style
    dataset a ``WorkerDataset`` that loads and collates whole batches in the workers (conveyor's
    error notes; the native pipeline inside each worker when the engine can run it)."""

    def __init__(
        self, loader: "DataLoader[Any]", num_workers: int, native: Optional[NativeSetup]
    ) -> None:
        self._loader = loader
        self.num_workers = num_workers
        collate = loader.collate_fn
        if loader.pad_to_multiple is not None and loader._auto_collation and native is None:
            # padded in the worker processes; the parent counts the padding (process_workers)
            collate = PaddingCollate(collate, loader.pad_to_multiple, False, None)
        if loader._iterable:  # torch's own replicas: the dataset as given
            self.collate_fn = collate
            return
        self.dataset = WorkerDataset(
            loader.dataset,
            collate,
            native=native if loader._auto_collation else None,
            on_error=loader.on_error,
            pad_to_multiple=loader.pad_to_multiple,
        )
        self.collate_fn = already_collated
        self.worker_init_fn = WorkerInit(loader.dataset, loader.worker_init_fn)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class DataLoader(tud.DataLoader[_T_co]):
    """Combines a dataset and a sampler and iterates over batches: torch's DataLoader, faster.

    Every argument of ``torch.utils.data.DataLoader`` is accepted with the same meaning and
    validated with the same errors. ``conveyor.DataLoader[T]`` is a generic class like torch's.

    Workers (``worker_mode``):

    - ``"auto"`` (default): threads when the whole pipeline runs natively (a conveyor VOC
      dataset whose transforms the engine runs entirely, no ``target_transform``, a collate
      conveyor builds from the engine's batch), on a free-threaded interpreter (3.13t and
      later) and with ``on_error="skip"``; processes whenever Python work per sample remains,
      so it never shares the training process's GIL. Leaving threads warns once, saying why;
      torch's warning about more worker processes than CPUs comes only when processes start.
    - ``"thread"``: ``num_workers`` threads (native threads on the native path, Python
      threads on the generic path); nothing is pickled and start-up is instant, but Python code
      in ``__getitem__`` shares one GIL. ``multiprocessing_context`` is validated and otherwise
      unused. ``torch.utils.data.get_worker_info()`` returns ``None`` in worker threads;
      ``conveyor.loader.get_worker_info()`` gives the thread's info. Torch ops in worker threads
      run single-threaded (the thread's OpenMP limit only), so their OpenMP teams do not compete
      with the training step; Python work in them still shares the GIL with the training
      thread.
    - ``"process"``: ``num_workers`` processes run by torch's own multiprocessing DataLoader
      machinery (worker loop, shared-memory tensors, ``timeout``, ``worker_init_fn``,
      ``torch.utils.data.get_worker_info()``, ``persistent_workers``, ``multiprocessing_context``;
      a crash or an exception in a worker raises in this process as in torch, with conveyor's
      note naming the failing sample), fed by conveyor's sample order (seeded shuffle, sharding,
      exact resume) and counted in ``loader.stats``. A conveyor dataset runs its native
      pipeline in each worker (a single-threaded engine, then the Python part), with the same
      batches as thread mode; any other dataset's ``__getitem__`` runs there as in torch.

    ``loader.stats.worker_mode`` / ``worker_mode_reason`` say which ran and why. With
    ``num_workers=0`` everything runs in the calling thread whatever the mode.
    ``CONVEYOR_MAX_WORKERS=N`` caps the workers of every loader in the process (for a machine
    shared by several GPU processes).

    Other differences, all deliberate:

    - ``shuffle=True`` without ``generator`` uses conveyor's seeded shuffle: epoch ``e`` is the
      permutation ``DistributedSampler(shuffle=True, seed=seed)`` gives after ``set_epoch(e)``,
      so runs are reproducible and resumable. With a ``generator`` the order is exactly torch's
      ``RandomSampler`` order for that generator.
    - In thread mode an ``IterableDataset`` is iterated once per epoch, by a single thread when
      ``num_workers > 0`` (which then only prefetches). torch would run one replica per worker
      process and duplicate the data unless the dataset shards itself by ``get_worker_info()``;
      conveyor yields each element once whatever ``num_workers`` is. Process mode keeps torch's
      one replica per worker.
    - The shuffle draws the permutation of the dataset's current length at every epoch, so a
      dataset that grows or shrinks between epochs is sampled whole, as with torch.

    The native path is taken when the dataset is a ``conveyor.datasets.VOCDetection`` or
    ``VOCSegmentation`` (image-only ``transform``, or joint ``transforms`` with
    ``target_format="mask"``), batching is automatic (no custom
    ``batch_sampler``), and the transforms start with ops ``conveyor.transforms`` recognises.
    It gives the same batches as the Python path (same order, same targets; images within
    1/255 of torchvision, and within the engine's DCT-scaling tolerance when an image is
    shrunk more than 2x), with these differences: random augmentations draw from
    ``(seed, epoch, sample index)`` instead of torch's global RNG (so every batch is
    bit-identical whatever ``num_workers``, and resumes exactly), ``worker_init_fn`` is not
    called and ``timeout`` is not enforced, a new ``iter(loader)`` closes the loader's previous
    iterator (its next ``next()`` raises a RuntimeError saying so), and the engine drops boxes that a
    crop leaves empty (torchvision keeps them clamped to zero area). ``loader.stats.path``
    says which path ran.

    Resuming: ``state_dict()``/``load_state_dict()`` restore the epoch and the number of batches
    already delivered (exact with ``in_order=True``). Distributed: ``shard(rank, world_size)``
    (or ``rank=``/``world_size=``) gives ``DistributedSampler`` semantics; ``set_epoch(n)``
    selects the epoch.

    Args:
        dataset: Dataset from which to load the data (map-style or iterable).
        batch_size: How many samples per batch to load (None disables batching).
        shuffle: Reshuffle the data at every epoch.
        sampler: Defines the strategy to draw samples from the dataset.
        batch_sampler: Like sampler, but returns a batch of indices at a time.
        num_workers: How many workers (threads or processes, see ``worker_mode``) load data
            (0: the calling thread).
        collate_fn: Merges a list of samples into a batch (default: torch's default_collate).
        pin_memory: Copy tensors into page-locked memory before returning them (only when an
            accelerator is present, as in torch).
        drop_last: Drop the last incomplete batch.
        timeout: Seconds to wait for a batch from the workers (0: forever).
        worker_init_fn: Called with the worker id in each worker thread before loading.
        multiprocessing_context: Start method of process workers (threads ignore it).
        generator: RNG for the RandomSampler and the base seed, as in torch.
        prefetch_factor: Batches loaded in advance by each worker (default 2 with workers).
        persistent_workers: Keep the worker threads alive between epochs.
        pin_memory_device: Deprecated in torch; warns the same way.
        in_order: Return batches in sampler order (False: as soon as they are ready).
        seed: Seed of the native shuffle and of native random augmentations (default: drawn from
            torch's RNG at the first iteration, so ``torch.manual_seed`` makes runs repeatable).
        on_error: ``"raise"`` (default): a sample that fails to load raises at its batch, naming
            the sample index and file. ``"skip"``: the sample is dropped from its batch, counted
            in ``stats.samples_skipped`` and listed in ``stats.skipped``.
        rank: This process's rank for distributed sharding (see ``shard``).
        world_size: Number of processes for distributed sharding (see ``shard``).
        pad_to_multiple: ``None`` (default): images of different sizes come as a list of
            tensors. An int ``m``: each batch's images come as one torchvision ``ImageList``
            (``.tensors`` ``[B, C, Hp, Wp]``, zero-padded at the bottom and right up to the
            largest height and width rounded up to ``m``; ``.image_sizes``, the true
            ``(height, width)`` of each image), as ``GeneralizedRCNNTransform.batch_images``
            builds it; targets are unchanged (padding moves no box). The ``ImageList`` replaces
            the images of the collate's result (``detection_collate``: ``(ImageList, list of
            targets)``; ``tuple(zip(*batch))``: ``(ImageList, tuple of targets)``); segmentation
            masks are padded with 255 to the same size. ``stats.padding_fraction`` says how much
            of the batches is padding.
        worker_mode: ``"auto"`` (default), ``"thread"`` or ``"process"``: see above.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: Optional[int] = 1,
        shuffle: Optional[bool] = None,
        sampler: Union[tud.Sampler[Any], Iterable[Any], None] = None,
        batch_sampler: Union[tud.Sampler[List[Any]], Iterable[List[Any]], None] = None,
        num_workers: int = 0,
        collate_fn: Optional[Callable[..., Any]] = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Optional[Callable[[int], None]] = None,
        multiprocessing_context: Any = None,
        generator: Optional[torch.Generator] = None,
        *,
        prefetch_factor: Optional[int] = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        seed: Optional[int] = None,
        on_error: str = "raise",
        rank: int = 0,
        world_size: int = 1,
        worker_mode: str = "auto",
        pad_to_multiple: Optional[int] = None,
    ) -> None:
        if worker_mode not in _WORKER_MODES:
            raise ValueError(
                f"worker_mode should be 'thread', 'process' or 'auto', but got "
                f"worker_mode={worker_mode!r}"
            )
        # set before torch's constructor, which calls check_worker_number_rationality
        self.worker_mode = worker_mode
        self.on_error = on_error  # (torch's constructor's worker check reads both)
        if on_error not in _ON_ERROR:
            raise ValueError(f"on_error should be 'raise' or 'skip', but got on_error={on_error!r}")
        if on_error == "skip" and worker_mode == "process":
            raise ValueError(
                "on_error='skip' needs worker_mode='thread' (or 'auto', which then takes "
                "threads): torch's worker processes raise on a failing sample"
            )
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TypeError(f"seed should be an int or None, but got seed={seed!r}")
        validate_shard(rank, world_size)
        self.pad_to_multiple = check_pad_to_multiple(pad_to_multiple)
        super().__init__(
            dataset,
            batch_size,
            shuffle,
            sampler,
            batch_sampler,
            num_workers,
            collate_fn,
            pin_memory,
            drop_last,
            timeout,
            worker_init_fn,
            multiprocessing_context,
            generator,
            prefetch_factor=prefetch_factor,
            persistent_workers=persistent_workers,
            pin_memory_device=pin_memory_device,
            in_order=in_order,
        )
        self._iterable = isinstance(dataset, tud.IterableDataset)
        self._user_sampler = sampler is not None
        self._user_batch_sampler = batch_sampler is not None
        self.shuffle = (not self._iterable) and bool(shuffle)
        self.on_error = on_error
        self._seed = seed
        self._seeded_shuffle = self.shuffle and generator is None and sampler is None
        if self._seeded_shuffle:
            # replaces torch's RandomSampler(generator=None), which draws from the global RNG
            # reads len(dataset) at every epoch, like torch's RandomSampler
            native_sampler = SeededShuffleSampler(dataset, seed if seed is not None else 0)
            object.__setattr__(self, "sampler", native_sampler)
            if self.batch_size is not None:
                object.__setattr__(
                    self,
                    "batch_sampler",
                    tud.BatchSampler(native_sampler, self.batch_size, self.drop_last),
                )
        self.rank = rank
        self.world_size = world_size
        self.shard_drop_last = False
        self._sampler_shards = False  # a batch sampler with shard() splits the epoch itself
        self._sampler_snapshot: Any = None  # user sampler's epoch_snapshot for the next epoch
        self._warned_resume = False
        self._next_epoch = 0
        self._resume_skip = 0
        self._saved_shard: Optional[Tuple[int, Any]] = (
            None  # (world_size, resharded_from) of a resume
        )
        self._epoch_reshard: Optional[Tuple[int, ...]] = None  # (world_size, samples read per rank)
        self._progress: Optional[Dict[str, Any]] = None
        self._recorder: Optional[StatsRecorder] = None
        self._total_skipped = 0
        self._pool: Optional[WorkerPool] = None
        self._last_iterator: Optional[weakref.ref[Any]] = None
        self._drew_base_seed = False
        self._native_plan: Optional[NativeSetup] = None
        self._warned_auto = False
        self._native_checked = False
        self._python_reason = ""
        self._native_key: Tuple[Any, ...] = ()
        self._engine_seed: Optional[int] = None
        self._feed_buffers = False  # tests: exercise the pinned-buffer path without a GPU

    # ----------------------------------------------------------------------------- public extras

    @property
    def seed(self) -> Optional[int]:
        """The seed in use (``None`` until the first iteration when none was given)."""
        return self._seed

    @property
    def stats(self) -> LoaderStats:
        """Throughput and health of the current (or last) epoch: see ``LoaderStats``."""
        if self._recorder is None:
            return LoaderStats(total_samples_skipped=self._total_skipped)
        return self._recorder.snapshot()

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch of the next iteration (its shuffle order and random augmentations).

        Without calls, epochs count 0, 1, 2, ... with each new ``iter(loader)``. The call is
        forwarded to a user sampler or batch sampler that has ``set_epoch`` (e.g.
        ``DistributedSampler``). Setting the epoch a ``load_state_dict`` resumes keeps the resume
        point.

        Args:
            epoch: Epoch number (>= 0).
        """
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch should be a non-negative int, but got epoch={epoch!r}")
        if epoch != self._next_epoch:
            self._resume_skip = 0
        self._next_epoch = epoch
        user_object: Any  # a user's sampler: anything with set_epoch
        for user_object in (
            self.sampler if self._user_sampler else None,
            self.batch_sampler if self._user_batch_sampler else None,
        ):
            if hasattr(user_object, "set_epoch"):
                user_object.set_epoch(epoch)

    def shard(self, rank: int, world_size: int, drop_last: bool = False) -> "DataLoader[_T_co]":
        """Make this loader read only its rank's share, like ``DistributedSampler``.

        Every rank must use the same seed (pass ``seed=`` or call ``seed_everything`` before the
        first iteration) so that the ranks split the same permutation. Each rank gets
        ``ceil(N / world_size)`` samples, padded by repeating the start of the epoch's order
        (or ``floor`` with ``drop_last=True``), disjoint otherwise; with shuffling, epoch ``e`` on
        rank ``r`` is exactly ``DistributedSampler(ds, world_size, r, shuffle=True, seed=seed)``
        after ``set_epoch(e)``. A custom sampler's epoch order is split the same way; a custom
        batch sampler's batches are split whole, unless it has its own ``shard(rank, world_size,
        drop_last)`` (``conveyor.samplers.GroupedBatchSampler``), which is called instead. Iterable
        datasets must split their stream themselves. The Trainer calls this for distributed runs.

        Args:
            rank: This process's rank in ``[0, world_size)``.
            world_size: Number of processes.
            drop_last: Drop the uneven tail instead of padding by repetition.

        Returns:
            The loader itself.
        """
        validate_shard(rank, world_size)
        if self._iterable and world_size > 1:
            raise ValueError(
                "shard() needs a map-style dataset: an IterableDataset must split "
                "its stream itself (e.g. by torch.distributed.get_rank())"
            )
        self.rank, self.world_size, self.shard_drop_last = rank, world_size, bool(drop_last)
        if self._user_batch_sampler and hasattr(self.batch_sampler, "shard"):
            # e.g. conveyor.samplers.GroupedBatchSampler: it splits samples, then groups them
            batch_sampler: Any = self.batch_sampler  # has shard(), checked above
            batch_sampler.shard(rank, world_size, drop_last)
            self._sampler_shards = True
        return self

    def state_dict(self) -> Dict[str, Any]:
        """Where the loader stands, to resume mid-epoch with ``load_state_dict``.

        Resuming yields exactly the batches an uninterrupted run would have produced next, for
        the default samplers, the seeded shuffle, ``RandomSampler`` with a ``generator``, any
        deterministic sampler, and a user sampler or batch sampler that is stateful (torchdata's
        ``state_dict``/``load_state_dict``, e.g. ``conveyor.samplers.GroupedBatchSampler``) or
        wraps a sampler with a ``generator`` (its state at the epoch's start is kept). Other user
        samplers (``RandomSampler`` without a generator) are fast-forwarded by the number of
        batches, in a new order: ``state_dict`` warns once. Datasets whose own randomness comes
        from torch's global RNG are not rewound.

        Returns:
            A small dict of ints (and the generator's state tensor when there is a generator).
        """
        progress = self._progress
        user_sampler = self._user_order_object()
        if user_sampler is not None and not self._warned_resume and not replays_epoch(user_sampler):
            self._warned_resume = True
            warnings.warn(
                f"conveyor.DataLoader: the {type(user_sampler).__name__} given cannot replay an "
                "epoch (no state_dict and no torch.Generator to restore); a resumed epoch "
                "skips the right number of batches of a different order",
                stacklevel=2,
            )
        if progress is None or progress["finished"]:
            epoch, skip = self._next_epoch, self._resume_skip
            generator_state = self.generator.get_state() if self.generator is not None else None
            snapshot = self._sampler_snapshot
            if snapshot is None and user_sampler is not None:
                snapshot = epoch_snapshot(user_sampler)
        else:
            epoch, skip = progress["epoch"], progress["batches"]
            generator_state = progress["generator_state"]
            snapshot = progress.get("sampler_snapshot")
        resharded = None if progress is None or progress["finished"] else progress["reshard"]
        return {
            "version": _STATE_VERSION,
            "epoch": epoch,
            "batches_yielded": skip,
            "seed": self._seed,
            "generator_state": generator_state,
            "rank": self.rank,
            "world_size": self.world_size,
            "sampler_state": snapshot,
            "resharded_from": list(resharded) if resharded else None,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue from a ``state_dict()``: the next ``iter(loader)`` resumes that epoch.

        Args:
            state: What ``state_dict()`` returned (possibly from another process).
        """
        missing = {"epoch", "batches_yielded"} - set(state)
        if missing:
            raise KeyError(f"not a conveyor.DataLoader state_dict: missing {sorted(missing)}")
        self._next_epoch = int(state["epoch"])
        self._resume_skip = int(state["batches_yielded"])
        self._progress = None
        self._sampler_snapshot = state.get("sampler_state")
        self._saved_shard = (int(state.get("world_size") or 1), state.get("resharded_from"))
        if state.get("seed") is not None:
            self._set_seed(int(state["seed"]))
        if state.get("generator_state") is not None:
            if self.generator is None:
                raise ValueError(
                    "this state_dict comes from a DataLoader with a generator; "
                    "pass a torch.Generator to this one too"
                )
            self.generator.set_state(state["generator_state"])
            self._drew_base_seed = False

    # ------------------------------------------------------------------------------ torch surface

    def check_worker_number_rationality(self) -> None:
        """torch's warning about more worker processes than CPUs, where processes will run: at
        construction for ``worker_mode="process"`` and for ``"auto"`` on a dataset that never
        runs natively; when ``"auto"`` starts processes otherwise (threads: never)."""
        mode = getattr(self, "worker_mode", "auto")
        if mode == "process" or (mode == "auto" and self._auto_always_takes_processes()):
            super().check_worker_number_rationality()

    def _auto_always_takes_processes(self) -> bool:
        # a dataset the engine never runs (not one of conveyor's VOC datasets): "auto" takes
        # processes whatever its transforms, unless on_error="skip" or no GIL
        if getattr(self, "on_error", "raise") == "skip" or _free_threaded():
            return False
        try:
            from conveyor.datasets import VOCDetection, VOCFolder, VOCSegmentation
        except ImportError:
            return True
        return type(self.dataset) not in (VOCDetection, VOCSegmentation, VOCFolder)

    def __len__(self) -> int:
        if self.world_size == 1 or self._iterable or self._sampler_shards:
            return super().__len__()
        if self._user_batch_sampler:
            # sized, as torch's __len__ needs it too
            batch_sampler = cast(Sized, self.batch_sampler)
            return sharded_length(len(batch_sampler), self.world_size, self.shard_drop_last)
        sampler = cast(Sized, self.sampler)
        samples = sharded_length(len(sampler), self.world_size, self.shard_drop_last)
        if self.batch_size is None:
            return samples
        return (
            samples // self.batch_size if self.drop_last else math.ceil(samples / self.batch_size)
        )

    # conveyor's own iterators, not torch's private _BaseDataLoaderIter that its stub names
    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        if self.num_workers == 0 and self.timeout != 0:
            raise AssertionError("_SingleProcessDataLoaderIter requires timeout == 0")
        persistent = self.persistent_workers and self.num_workers > 0
        previous = self._last_iterator() if self._last_iterator is not None else None
        if (
            previous is not None
            and previous is not self._iterator  # persistent process workers are reused
            and (persistent or self._native_plan is not None)
        ):
            previous.close()
        workers = effective_workers(self.num_workers)
        mode, reason, setup = self._choose_workers(workers)
        epoch, skip = self._next_epoch, self._resume_skip
        self._next_epoch, self._resume_skip = epoch + 1, 0
        self._epoch_reshard, skip = self._resume_reshard(skip)
        generator_state = self.generator.get_state() if self.generator is not None else None
        if self._recorder is not None:
            self._total_skipped += self._recorder.skipped_count
        progress = {
            "epoch": epoch,
            "batches": skip,
            "finished": False,
            "generator_state": generator_state,
            "sampler_snapshot": None,
            "reshard": self._epoch_reshard,
        }
        self._progress = progress
        recorder = StatsRecorder(
            path="python", epoch=epoch, total_skipped_before=self._total_skipped
        )
        recorder.worker_mode, recorder.worker_mode_reason = mode, reason
        recorder.num_workers = workers if mode != "main" else 0
        self._recorder = recorder
        recorder.python_reason = self._python_reason
        if mode == "process":
            # torch's iterator draws the base seed, warns about pin_memory and pins itself
            if self.worker_mode == "auto":  # as torch's _get_iterator; "process" warned in init
                tud.DataLoader.check_worker_number_rationality(self)
            if setup is not None:
                recorder.path = "native"  # the engine runs in each worker process
            progress["sampler_snapshot"] = self._sampler_epoch_snapshot()
            iterator: Iterator[Any] = self._process_iterator(
                epoch, skip, progress, recorder, persistent, workers, setup
            )
            self._last_iterator = weakref.ref(iterator)
            return iterator
        base_seed = self._draw_base_seed(persistent)
        if self._seed is None:
            self._set_seed(base_seed)
        if self._seeded_shuffle:
            self._shuffle_sampler().set_epoch(epoch)
        progress["sampler_snapshot"] = self._sampler_epoch_snapshot()
        pin = warn_pin_memory(self.pin_memory, self.pin_memory_device)
        if setup is not None:
            recorder.path = "native"
            iterator = self._native_iterator(setup, epoch, skip, pin, progress, recorder)
        else:
            iterator = self._generic_iterator(
                epoch, skip, base_seed, pin, progress, recorder, persistent, workers
            )
        self._last_iterator = weakref.ref(iterator)
        return iterator

    # --------------------------------------------------------------------------------- internals

    def _choose_workers(self, workers: int) -> Tuple[str, str, Optional[NativeSetup]]:
        """``(worker mode that runs, why, native setup or None)`` for the next epoch."""
        requested = f"worker_mode={self.worker_mode!r}"
        if workers == 0:
            setup = None if self.worker_mode == "process" else self._native_setup()
            return "main", f"{requested}, num_workers=0: the calling thread loads", setup
        setup = self._native_setup()
        if self.worker_mode == "thread":
            return "thread", requested, setup
        if self.worker_mode == "process":
            return "process", requested, setup
        if self.on_error == "skip":
            return "thread", f"{requested}: on_error='skip' runs in threads", setup
        python_part = self._python_part(setup)
        if python_part is None:
            return "thread", f"{requested}: the whole pipeline runs natively", setup
        if _free_threaded():
            return "thread", f"{requested}: free-threaded interpreter (no GIL)", setup
        if setup is not None and not self._warned_auto:
            self._warned_auto = True
            warnings.warn(
                f"conveyor.DataLoader: {python_part}; worker_mode='auto' runs this loader in "
                "worker processes (the native pipeline in each, then that Python part), so it "
                "does not share the training process's GIL. worker_mode='thread' keeps it in "
                "this process",
                stacklevel=3,
            )
        return "process", f"{requested}: {python_part}", setup

    def _python_part(self, setup: Optional[NativeSetup]) -> Optional[str]:
        """What of the pipeline runs Python per sample or per batch, ``None`` when nothing."""
        if setup is None:
            return "not a native pipeline: the dataset runs Python per sample"
        plan = setup.plan
        if plan.blocker is not None:
            return f"{plan.blocker} runs in Python per sample ({plan.reason})"
        if setup.target_transform is not None:
            return "the target_transform runs in Python per sample"
        kind = collate_kind(self.collate_fn, False)  # a user's collate: probed once (cached)
        if kind in ("detection", "zip", "stack_list", "stack_tuple"):
            return None
        if kind in ("default", "segmentation") and setup.masks_move:
            return None
        name = getattr(self.collate_fn, "__qualname__", type(self.collate_fn).__name__)
        return (
            f"the collate_fn {name} is not one conveyor builds from the engine's batch "
            "(detection_collate, segmentation_collate or default_collate of masks, "
            "tuple(zip(*batch)), torch.stack(images) with a list of targets), so it runs in "
            "Python on per-sample tensors"
        )

    def _process_iterator(
        self,
        epoch: int,
        skip: int,
        progress: Dict[str, Any],
        recorder: StatsRecorder,
        persistent: bool,
        workers: int,
        setup: Optional[NativeSetup],
    ) -> ProcessIterator:
        # The iterator refers to the loader weakly: a persistent one is kept by the loader
        # (loader._iterator, as in torch), and deleting both must stop the workers at once,
        # as torch's do, not at the next cyclic collection. What it needs after the loader
        # may be gone (an `iter(DataLoader(...))` keeps only the iterator) is kept here.
        loader_ref = weakref.ref(self)
        index_sampler = self._index_sampler
        known: Dict[str, Any] = {"seed": self._seed}

        def start(base_seed: int) -> Iterator[Any]:
            # called by torch's iterator once it drew its base seed, at the first index
            loader = loader_ref()
            if loader is None:
                return iter(())  # the loader is gone: nothing more to send
            if loader._seed is None:
                loader._set_seed(base_seed)
            known["seed"] = loader._seed
            if loader._seeded_shuffle:
                loader._shuffle_sampler().set_epoch(epoch)
            if loader._iterable:  # torch's own stream: each worker iterates its replica
                return iter(loader._index_sampler)
            return loader._index_stream(skip)

        def length() -> int:
            loader = loader_ref()
            if loader is not None:
                known["length"] = len(loader)
            elif "length" not in known:
                known["length"] = len(index_sampler)  # as torch's iterator counts
            value: int = known["length"]
            return value

        def seed() -> Optional[int]:
            value: Optional[int] = known["seed"]
            return value

        def on_batch() -> None:
            progress["batches"] += 1

        def on_end() -> None:
            progress["finished"] = True

        feed = EpochFeed(
            start,
            recorder,
            on_batch,
            on_end,
            self.batch_size,
            length,
            epoch=epoch,
            first_batch=skip,
            seed=seed,
        )
        target: Any = _WorkerView(self, workers, setup)
        iterator = self._iterator if persistent else None
        if isinstance(iterator, ProcessIterator):
            iterator.reset(target, feed)
        else:
            iterator = ProcessIterator(target, feed)
            if persistent:
                self._iterator = iterator
        if self._iterable and skip:
            iterator.discard(skip)  # a stream can only be fast-forwarded by reading it
        return iterator

    def _resume_reshard(self, skip: int) -> Tuple[Optional[Tuple[int, ...]], int]:
        # A mid-epoch state saved by a run on another number of ranks: the epoch's global order
        # is known, so the rest nobody has read yet is re-sharded over this run's ranks and the
        # epoch ends with every sample read once. Returns (reshard or None, batches to skip).
        saved, self._saved_shard = self._saved_shard, None
        if saved is None or not skip:
            return None, skip
        saved_world, previous = saved
        if previous is not None:  # saved while finishing an epoch re-sharded already
            if saved_world != self.world_size:
                raise ValueError(
                    "this state_dict was saved while finishing an epoch re-sharded from "
                    f"{previous[0]} ranks; resume it on {saved_world} ranks, or at an epoch end"
                )
            return tuple(previous), skip
        if saved_world == self.world_size:
            return None, skip
        if self._user_batch_sampler or self._iterable or self._sampler_shards:
            raise ValueError(
                f"cannot resume mid-epoch on {self.world_size} ranks a state saved on {saved_world}"
                ": a custom batch_sampler, a self-sharding sampler or an IterableDataset has no "
                "global order to re-shard"
            )
        return (saved_world, skip * (self.batch_size or 1)), 0

    def _rank_order(self, order: List[int]) -> List[int]:
        """This rank's part of the epoch's global ``order`` (sharded, or re-sharded on resume)."""
        if self._epoch_reshard is not None:
            world, read_per_rank = self._epoch_reshard
            order = unconsumed_order(order, world, read_per_rank, self.shard_drop_last)
        elif self.world_size == 1:
            return order
        return shard_indices(order, self.rank, self.world_size, self.shard_drop_last)

    def _user_order_object(self) -> Any:
        if self._user_batch_sampler:
            return self.batch_sampler
        return self.sampler if self._user_sampler else None

    def _sampler_epoch_snapshot(self) -> Any:
        # a user sampler replays this epoch on resume (see state_dict)
        user_sampler = self._user_order_object()
        if user_sampler is None:
            return None
        restore_snapshot(user_sampler, self._sampler_snapshot)
        self._sampler_snapshot = None
        return epoch_snapshot(user_sampler)

    def _shuffle_sampler(self) -> SeededShuffleSampler:
        # with _seeded_shuffle, __init__ installed a SeededShuffleSampler as self.sampler
        return cast(SeededShuffleSampler, self.sampler)

    def _set_seed(self, seed: int) -> None:
        self._seed = seed
        if self._seeded_shuffle:
            self._shuffle_sampler().seed = seed

    def _draw_base_seed(self, persistent: bool) -> int:
        # torch draws the workers' base seed from `generator` when it creates an iterator (not
        # when persistent workers are reused); mirroring it keeps RandomSampler's order identical.
        if persistent and self._drew_base_seed:
            return self._seed if self._seed is not None else 0
        self._drew_base_seed = True
        return int(torch.empty((), dtype=torch.int64).random_(generator=self.generator).item())

    def _index_stream(self, skip: int) -> Iterator[Any]:
        if self._iterable:
            return itertools.count()
        if self._epoch_reshard is not None:
            indices = self._rank_order(list(cast(Iterable[int], self.sampler)))
            stream: Iterable[Any] = batch_indices(indices, self.batch_size, self.drop_last)
        elif self.world_size == 1 or self._sampler_shards:
            stream = self._index_sampler
        elif self._user_batch_sampler:
            stream = shard_indices(
                list(cast(Iterable[List[Any]], self.batch_sampler)),
                self.rank,
                self.world_size,
                self.shard_drop_last,
            )
        else:
            indices = shard_indices(
                list(self.sampler), self.rank, self.world_size, self.shard_drop_last
            )
            stream = batch_indices(indices, self.batch_size, self.drop_last)
        return itertools.islice(iter(stream), skip, None)

    def _native_setup(self) -> Any:
        # planned once (one warning per loader), again only if the dataset's transforms change
        dataset = self.dataset
        key = tuple(
            id(getattr(dataset, name, None))
            for name in ("transforms", "transform", "target_transform")
        )
        if not self._native_checked or key != self._native_key:
            if self._native_plan is not None and self._native_plan.engine is not None:
                self._native_plan.engine.close()
            self._native_checked, self._native_key = True, key
            self._native_plan, self._python_reason = plan_native(self)
        return self._native_plan

    def _native_iterator(
        self,
        setup: NativeSetup,
        epoch: int,
        skip: int,
        pin: Optional[str],
        progress: Dict[str, Any],
        recorder: StatsRecorder,
    ) -> NativeIterator:
        if setup.engine is None or self._engine_seed != self._seed:
            if setup.engine is not None:
                setup.engine.close()
            setup.engine = create_engine(self, setup)
            self._engine_seed = self._seed
        batches = IndexBatches.of(self._index_stream(0))  # this rank's, as the sampler made them

        def on_batch() -> None:
            progress["batches"] += 1

        def on_end() -> None:
            progress["finished"] = True

        return NativeIterator(
            self,
            setup,
            batches,
            epoch,
            skip,
            recorder,
            on_batch,
            on_end,
            pin,
            feed_buffers=self._feed_buffers,
        )

    def _worker_pool(self, base_seed: int, persistent: bool, workers: int) -> WorkerPool:
        workers = 1 if self._iterable else workers  # one reader keeps a stream in order
        if persistent:
            if self._pool is None:
                self._pool = WorkerPool(workers, self.dataset, base_seed, self.worker_init_fn)
            return self._pool
        return WorkerPool(workers, self.dataset, base_seed, self.worker_init_fn)

    def _generic_iterator(
        self,
        epoch: int,
        skip: int,
        base_seed: int,
        pin: Optional[str],
        progress: Dict[str, Any],
        recorder: StatsRecorder,
        persistent: bool,
        workers: int,
    ) -> GenericIterator:
        collate = self.collate_fn
        if self.pad_to_multiple is not None and (self._auto_collation or self._iterable):
            collate = PaddingCollate(collate, self.pad_to_multiple, pin is not None, recorder)
        if self._iterable:
            fetcher: Union[IterableFetcher, MapFetcher] = IterableFetcher(
                self.dataset, self.batch_size, self.drop_last, collate, pin
            )
            for number in range(skip):  # a stream can only be fast-forwarded by reading it
                if fetcher(number, None, recorder)[1] == 0:
                    break
        else:
            fetcher = MapFetcher(self.dataset, self._auto_collation, collate, self.on_error, pin)
        pool = self._worker_pool(base_seed, persistent, workers) if workers > 0 else None
        in_flight = workers * (self.prefetch_factor or 0)

        def on_batch() -> None:
            progress["batches"] += 1

        def on_end() -> None:
            progress["finished"] = True

        return GenericIterator(
            fetcher,
            self._index_stream(0 if self._iterable else skip),
            pool,
            owns_pool=not persistent,
            in_flight=in_flight,
            timeout=self.timeout,
            in_order=self.in_order,
            stats=recorder,
            on_batch=on_batch,
            on_end=on_end,
            length=self.__len__,
            len_called=self._IterableDataset_len_called if self._iterable else None,
        )

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state.update(
            _pool=None,
            _iterator=None,
            _last_iterator=None,
            _recorder=None,
            _native_plan=None,
            _native_checked=False,
        )
        return state

    def __del__(self) -> None:
        pool = self.__dict__.get("_pool")
        if pool is not None:
            pool.shutdown()
        # a persistent ProcessIterator is not closed here: it may outlive the loader
        # (`iter(DataLoader(...))`); torch's own __del__ stops its workers when it goes
        setup = self.__dict__.get("_native_plan")
        if setup is not None and setup.engine is not None:
            setup.engine.close()
