"""Several training loaders in one ``fit`` (Lightning 1.6's ``CombinedLoader``): each step gets
one batch of every loader, in the collection's shape (a list or a dict of batches).

``"max_size_cycle"`` (the Trainer's default) runs as many steps as the longest loader has
batches and starts the shorter ones again when they run out; ``"min_size"`` stops with the
shortest. Unlike Lightning, a restarted pass draws a new order (every pass of a loader within
epoch ``e`` has its own epoch number, ``e * passes_per_epoch + pass``) and the combination resumes
exactly mid-epoch: each conveyor DataLoader from its own ``state_dict``, any other loader by
replaying its pass from the global RNG state it started with.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch

from conveyor.training.errors import MisconfigurationException
from conveyor.training.limits import loader_length


def _flatten(loaders: Any) -> Tuple[List[Any], Callable[[List[Any]], Any]]:
    """The leaf loaders of a (nested) list/tuple/dict, and a function that puts one value per
    leaf back into that shape (tuples become lists, as Lightning turns them into lists)."""
    if isinstance(loaders, Mapping):
        keys = list(loaders)
        parts = [_flatten(loaders[k]) for k in keys]
    elif isinstance(loaders, (list, tuple)):
        keys = None
        parts = [_flatten(item) for item in loaders]
    else:
        return [loaders], lambda values: values[0]
    leaves: List[Any] = []
    spans = []
    for part_leaves, _ in parts:
        spans.append((len(leaves), len(leaves) + len(part_leaves)))
        leaves.extend(part_leaves)

    def rebuild(values: List[Any]) -> Any:
        built = [part[1](values[a:b]) for part, (a, b) in zip(parts, spans)]
        return dict(zip(keys, built)) if keys is not None else built

    return leaves, rebuild


def set_loader_epoch(loader: Any, epoch: int) -> None:
    """``set_epoch`` on the loader, else on its sampler or batch sampler (DistributedSampler)."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    for candidate in (
        loader,
        getattr(loader, "sampler", None),
        batch_sampler,
        getattr(batch_sampler, "sampler", None),
    ):
        if candidate is not None and hasattr(candidate, "set_epoch"):
            candidate.set_epoch(epoch)
            return


def _begin(loader: Any) -> Iterator[Any]:
    """``iter(loader)`` with its first batch already drawn (and kept first)."""
    iterator = iter(loader)
    try:
        first = next(iterator)
    except StopIteration:
        return iter(())
    return itertools.chain([first], iterator)


def _stateful(loader: Any) -> bool:
    # conveyor.DataLoader: resumes a pass from its own state_dict
    return callable(getattr(loader, "state_dict", None)) and callable(
        getattr(loader, "load_state_dict", None)
    )


class CombinedLoader:
    """Iterate several loaders together (Lightning 1.6's ``CombinedLoader``).

    Args:
        loaders: a list, tuple or dict (possibly nested) of DataLoaders or other iterables, or
            a single one (its batches come as they are).
        mode: ``"min_size"`` (stop with the shortest loader, Lightning's default for a
            ``CombinedLoader`` built by hand) or ``"max_size_cycle"`` (stop with the longest,
            restarting the others; the Trainer's ``multiple_trainloader_mode`` default).

    Raises:
        MisconfigurationException: an unknown mode, or an empty collection.
    """

    SUPPORTED_MODES = ("min_size", "max_size_cycle")

    def __init__(self, loaders: Any, mode: str = "min_size") -> None:
        if mode not in self.SUPPORTED_MODES:
            raise MisconfigurationException(
                f"Invalid Mode: {mode!r}; CombinedLoader supports {list(self.SUPPORTED_MODES)}"
            )
        leaves, rebuild = _flatten(loaders)
        if not leaves:
            raise MisconfigurationException(
                "CombinedLoader needs a loader or a non-empty list, tuple or dict of loaders"
            )
        for leaf in leaves:
            if not hasattr(leaf, "__iter__"):
                raise MisconfigurationException(
                    f"CombinedLoader: {type(leaf).__name__} is not a loader (not iterable)"
                )
        self.loaders = loaders
        self.mode = mode
        self._leaves = leaves
        self._rebuild = rebuild
        self._epoch = 0
        self._resume: Optional[Dict[str, Any]] = None
        self._reset_progress()

    def _reset_progress(self) -> None:
        n = len(self._leaves)
        self._batches_yielded = 0
        self._passes = [0] * n  # passes started this epoch, minus one
        self._consumed = [0] * n  # batches read from the current pass
        self._exhausted = [False] * n  # ran out at least once this epoch
        self._pass_rng: List[Optional[torch.Tensor]] = [None] * n

    # -- the collection -------------------------------------------------------------------
    @property
    def sampler(self) -> Any:
        """The loaders' samplers, in the collection's shape."""
        return self._rebuild([getattr(leaf, "sampler", None) for leaf in self._leaves])

    @property
    def batch_sampler(self) -> Any:
        return self._rebuild([getattr(leaf, "batch_sampler", None) for leaf in self._leaves])

    def first_batch(self, batch: Any) -> Any:
        """The first loader's batch within a combined batch (what its batch size is read from)."""
        shape = self.loaders
        while isinstance(shape, (Mapping, list, tuple)):
            key = next(iter(shape)) if isinstance(shape, Mapping) else 0
            shape, batch = shape[key], batch[key]
        return batch

    def _lengths(self) -> List[float]:
        return [loader_length(leaf) for leaf in self._leaves]

    def _length(self) -> float:
        lengths = self._lengths()
        return max(lengths) if self.mode == "max_size_cycle" else min(lengths)

    def __len__(self) -> int:
        length = self._length()
        if length == math.inf:
            raise TypeError("CombinedLoader: a loader has no length")
        return int(length)

    def _passes_per_epoch(self, lengths: List[float]) -> List[int]:
        """How many passes of each loader an epoch takes (at most), so that every pass of every
        epoch gets its own epoch number."""
        if self.mode == "min_size":
            return [1] * len(lengths)
        longest = max(lengths)
        return [
            1 if n == math.inf or longest == math.inf or n == 0 else max(1, math.ceil(longest / n))
            for n in lengths
        ]

    # -- epochs and resume ----------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch the next iteration runs (the Trainer calls it every epoch)."""
        if self._resume is not None and int(self._resume["epoch"]) != epoch:
            self._resume = None
        self._epoch = epoch

    def state_dict(self) -> Dict[str, Any]:
        """Where the iteration stands: the epoch, the batches yielded, and for each loader its
        pass, the batches read from it and (conveyor loaders) its own ``state_dict``."""
        return {
            "epoch": self._epoch,
            "batches_yielded": self._batches_yielded,
            "passes": list(self._passes),
            "consumed": list(self._consumed),
            "exhausted": list(self._exhausted),
            "pass_rng": list(self._pass_rng),
            "loaders": [leaf.state_dict() if _stateful(leaf) else None for leaf in self._leaves],
        }

    def state_after_epoch(self, epoch: int) -> Dict[str, Any]:
        """What the next epoch needs, whether or not this one ran to its end: each conveyor
        loader's seed and generator state now, no progress."""
        loaders: List[Optional[Dict[str, Any]]] = []
        for leaf in self._leaves:
            if not _stateful(leaf):
                loaders.append(None)
                continue
            state = leaf.state_dict()
            generator = getattr(leaf, "generator", None)
            state.update(
                batches_yielded=0,
                generator_state=generator.get_state() if generator is not None else None,
            )
            loaders.append(state)
        n = len(self._leaves)
        return {
            "epoch": epoch + 1,
            "batches_yielded": 0,
            "passes": [0] * n,
            "consumed": [0] * n,
            "exhausted": [False] * n,
            "pass_rng": [None] * n,
            "loaders": loaders,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Resume from ``state_dict()`` (or ``state_after_epoch``) at the next iteration.

        Raises:
            MisconfigurationException: a state of another number of loaders, or written by a
                run on another number of ranks.
        """
        loaders = state.get("loaders")
        if loaders is None or len(loaders) != len(self._leaves):
            raise MisconfigurationException(
                f"this CombinedLoader state is for {len(loaders or [])} loaders, but "
                f"{len(self._leaves)} are being combined"
            )
        for leaf, sub in zip(self._leaves, loaders):
            saved = int((sub or {}).get("world_size") or 1)
            current = int(getattr(leaf, "world_size", 1) or 1)
            if sub is not None and saved != current and sub.get("batches_yielded"):
                raise MisconfigurationException(
                    f"resuming several train loaders mid-epoch on {current} ranks from a run on "
                    f"{saved} is not supported; resume on {saved} ranks or from an epoch-end "
                    "checkpoint"
                )
        self._resume = dict(state)
        self._epoch = int(state["epoch"])

    # -- iteration ------------------------------------------------------------------------
    def _start_pass(
        self, i: int, per_epoch: int, resuming: bool, state: Optional[Dict[str, Any]]
    ) -> Iterator:
        leaf = self._leaves[i]
        stateful = _stateful(leaf)
        if state is not None and stateful:
            leaf.load_state_dict(state)
        set_loader_epoch(leaf, self._epoch * per_epoch + self._passes[i])
        if stateful:
            return iter(leaf)
        # a torch loader draws its order (and its workers' seeds) from the global RNG when its
        # pass starts and at its first batch: both happen here, from a state kept so that a
        # resumed run draws the same pass again
        saved = self._pass_rng[i]
        if resuming and saved is not None:
            now = torch.get_rng_state()
            torch.set_rng_state(saved)
            try:
                iterator = _begin(leaf)
            finally:
                torch.set_rng_state(now)
            for _ in range(self._consumed[i]):
                next(iterator, None)
            return iterator
        self._pass_rng[i] = torch.get_rng_state()
        return _begin(leaf)

    def __iter__(self) -> Iterator[Any]:
        resume, self._resume = self._resume, None
        self._reset_progress()
        lengths = self._lengths()
        per_epoch = self._passes_per_epoch(lengths)
        total = self._length()
        sub_states: Sequence[Optional[Dict[str, Any]]] = [None] * len(self._leaves)
        if resume is not None:
            self._batches_yielded = int(resume["batches_yielded"])
            self._passes = [int(p) for p in resume["passes"]]
            self._consumed = [int(c) for c in resume["consumed"]]
            self._exhausted = [bool(e) for e in resume["exhausted"]]
            self._pass_rng = list(resume["pass_rng"])
            sub_states = resume["loaders"]
        iterators = [
            self._start_pass(i, per_epoch[i], resume is not None, sub_states[i])
            for i in range(len(lengths))
        ]
        return self._generate(iterators, per_epoch, total)

    def _generate(self, iterators: List[Iterator], per_epoch: List[int], total: float):
        while self._batches_yielded < total:
            batches = []
            for i, iterator in enumerate(iterators):
                try:
                    batch = next(iterator)
                except StopIteration:
                    self._exhausted[i] = True
                    if self.mode == "min_size" or all(self._exhausted):
                        return
                    self._passes[i] += 1
                    self._consumed[i] = 0
                    iterators[i] = iterator = self._start_pass(i, per_epoch[i], False, None)
                    try:
                        batch = next(iterator)
                    except StopIteration:  # an empty loader cannot be cycled
                        return
                self._consumed[i] += 1
                batches.append(batch)
            self._batches_yielded += 1
            yield self._rebuild(batches)
