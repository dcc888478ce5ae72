"""``loader.stats``: what a progress bar or a user needs to see whether the input pipeline keeps up."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import List, Tuple


@dataclass(frozen=True)
class LoaderStats:
    """A snapshot of the current (or last) epoch of a ``conveyor.DataLoader``.

    Attributes:
        path: ``"native"`` when the engine runs the pipeline (with maybe a Python tail, see
            ``python_reason``), ``"python"`` otherwise.
        python_reason: Why all or part of the pipeline runs in Python (the same text as the
            loader's one warning), ``""`` when it all runs natively.
        epoch: The epoch being iterated (``-1`` before the first iteration).
        batches: Batches handed to the caller so far in this epoch.
        samples: Samples in those batches.
        elapsed_s: Seconds since the epoch's iterator was created.
        images_per_second: ``samples / elapsed_s`` (0 before the first batch).
        wait_s: Seconds the caller spent blocked in ``next()`` waiting for data; close to
            ``elapsed_s`` means the model waits on the loader, close to 0 means the loader keeps up.
        samples_skipped: Samples dropped by ``on_error="skip"`` in this epoch.
        total_samples_skipped: Samples dropped over the loader's whole life.
        queue_depth: Batches prepared and waiting to be taken right now.
        skipped: ``(sample index, reason)`` of the samples skipped in this epoch (the first 100
            recorded), in sample index order.
        padding_fraction: With ``pad_to_multiple``: the share of the padded batches' pixels
            that are padding in this epoch (``1 - sum(h * w) / sum(B * Hp * Wp)``, counted as
            batches are padded, so mid-epoch it includes the few prepared ahead), 0.0 otherwise.
            Grouping images by aspect ratio (``conveyor.samplers.GroupedBatchSampler``) lowers it.
        worker_mode: What ran the workers: ``"thread"`` (native or Python threads),
            ``"process"`` (torch's worker processes) or ``"main"`` (``num_workers=0``: the
            calling thread).
        worker_mode_reason: Why (the requested ``worker_mode`` and, for ``"auto"``, what decided).
        num_workers: Workers actually started (``num_workers`` capped by
            ``CONVEYOR_MAX_WORKERS``).
    """

    path: str = "python"
    python_reason: str = ""
    epoch: int = -1
    batches: int = 0
    samples: int = 0
    elapsed_s: float = 0.0
    images_per_second: float = 0.0
    wait_s: float = 0.0
    samples_skipped: int = 0
    total_samples_skipped: int = 0
    queue_depth: int = 0
    skipped: Tuple[Tuple[int, str], ...] = ()
    padding_fraction: float = 0.0
    worker_mode: str = "main"
    worker_mode_reason: str = ""
    num_workers: int = 0


_MAX_SKIPPED_KEPT = 100


@dataclass
class StatsRecorder:
    """Mutable counters behind ``LoaderStats``; safe to update from worker threads."""

    path: str
    epoch: int
    python_reason: str = ""
    total_skipped_before: int = 0
    started: float = field(default_factory=time.perf_counter)
    batches: int = 0
    samples: int = 0
    wait_s: float = 0.0
    skipped: List[Tuple[int, str]] = field(default_factory=list)
    skipped_count: int = 0
    queue_depth: int = 0
    padding_pixels: int = 0
    padded_batch_pixels: int = 0
    worker_mode: str = "main"
    worker_mode_reason: str = ""
    num_workers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_batch(self, samples: int, waited_s: float) -> None:
        with self.lock:
            self.batches += 1
            self.samples += samples
            self.wait_s += waited_s

    def record_skip(self, index: int, reason: str) -> None:
        with self.lock:
            self.skipped_count += 1
            if len(self.skipped) < _MAX_SKIPPED_KEPT:
                self.skipped.append((index, reason))

    def record_padding(self, padding: int, total: int) -> None:
        """One padded batch: ``padding`` of its ``total`` pixels (per channel) are padding."""
        with self.lock:
            self.padding_pixels += padding
            self.padded_batch_pixels += total

    def snapshot(self) -> LoaderStats:
        with self.lock:
            elapsed = time.perf_counter() - self.started
            return LoaderStats(
                path=self.path,
                python_reason=self.python_reason,
                epoch=self.epoch,
                batches=self.batches,
                samples=self.samples,
                elapsed_s=elapsed,
                images_per_second=self.samples / elapsed if self.samples and elapsed > 0 else 0.0,
                wait_s=self.wait_s,
                samples_skipped=self.skipped_count,
                total_samples_skipped=self.total_skipped_before + self.skipped_count,
                queue_depth=self.queue_depth,
                skipped=tuple(sorted(self.skipped)),  # workers record them out of order
                padding_fraction=(
                    self.padding_pixels / self.padded_batch_pixels
                    if self.padded_batch_pixels
                    else 0.0
                ),
                worker_mode=self.worker_mode,
                worker_mode_reason=self.worker_mode_reason,
                num_workers=self.num_workers,
            )
