"""``strategy="ddp"`` on ``torch.distributed``: launching, sharding loaders, syncing gradients.

A run started by ``torchrun`` (``WORLD_SIZE`` in the environment) joins the process group it
describes. ``Trainer(strategy="ddp", devices=N)`` started as a plain script re-executes the same
command line N-1 times with ``RANK``/``WORLD_SIZE`` set, as Lightning's ``ddp`` does; the
original process becomes rank 0. ``strategy="ddp_spawn"`` (the default for ``devices=N``) starts
N processes with ``torch.multiprocessing`` instead (see ``spawn.py``). The backend is gloo on the CPU and nccl on CUDA.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from conveyor.training.loader_rebuild import torch_loader_arguments

_LAUNCHED_ENV = "CONVEYOR_DDP_CHILD"
_PROCESS_GROUP_TIMEOUT_S = 1800  # torch's default: a rank that never joins fails the others


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DDPStrategy:
    """Process group membership plus the collective operations the Trainer needs."""

    def __init__(
        self,
        num_processes: int,
        device_type: str,
        spawn: bool = False,
        timeout: Optional[float] = None,
    ) -> None:
        self.num_processes = num_processes
        self.device_type = device_type
        self.spawn = spawn
        self.timeout = timeout  # seconds for a whole ddp_spawn run; None: no limit
        self.children: List[subprocess.Popen] = []

    @property
    def must_spawn(self) -> bool:
        """True in the process that called ``fit`` under ``ddp_spawn``: it starts the ranks."""
        initialized = dist.is_available() and dist.is_initialized()
        return self.spawn and not self.launched_externally and not initialized

    # -- setup ----------------------------------------------------------------------------
    @property
    def launched_externally(self) -> bool:
        return "WORLD_SIZE" in os.environ and "RANK" in os.environ

    def setup_environment(self) -> None:
        """Launch the other ranks if needed, then join the process group."""
        if dist.is_available() and dist.is_initialized():
            return
        if not self.launched_externally:
            self._launch_children()
        backend = "nccl" if self.device_type == "cuda" else "gloo"
        dist.init_process_group(
            backend=backend,
            rank=int(os.environ["RANK"]),
            world_size=int(os.environ["WORLD_SIZE"]),
            timeout=timedelta(seconds=self.timeout or _PROCESS_GROUP_TIMEOUT_S),
        )

    def _launch_children(self) -> None:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        os.environ["WORLD_SIZE"] = str(self.num_processes)
        os.environ["RANK"] = "0"
        os.environ["LOCAL_RANK"] = "0"
        command = [sys.executable] + (sys.argv if sys.argv and sys.argv[0] else ["-c", "pass"])
        if sys.argv and sys.argv[0] == "-m":  # pragma: no cover - python -m with no module name
            command = [sys.executable] + sys.argv
        main_module = sys.modules.get("__main__")
        spec = getattr(main_module, "__spec__", None)
        if spec is not None and spec.name:  # started with python -m package.module
            command = [sys.executable, "-m", spec.name.removesuffix(".__main__")] + sys.argv[1:]
        for rank in range(1, self.num_processes):
            env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), **{_LAUNCHED_ENV: "1"})
            self.children.append(subprocess.Popen(command, env=env, cwd=os.getcwd()))

    def teardown(self, failed: bool = False) -> None:
        """Leave the process group. A failed rank leaves without the final barrier: the other
        ranks may be blocked in another collective and would never meet it there."""
        if dist.is_available() and dist.is_initialized():
            if not failed:
                dist.barrier()
            dist.destroy_process_group()
        for child in self.children:
            child.wait()
        codes = [c.returncode for c in self.children if c.returncode]
        self.children = []
        if codes:
            raise RuntimeError(f"DDP child processes exited with codes {codes}")

    @property
    def global_rank(self) -> int:
        return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", 0))

    @property
    def local_rank(self) -> int:
        return int(os.environ.get("LOCAL_RANK", self.global_rank))

    @property
    def world_size(self) -> int:
        return dist.get_world_size() if dist.is_initialized() else self.num_processes

    # -- collectives ----------------------------------------------------------------------
    def barrier(self) -> None:
        if dist.is_initialized():
            dist.barrier()

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Make every rank start from rank 0's parameters and buffers."""
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    def average_gradients(self, parameters) -> None:
        """All-reduce the gradients in one flat buffer per dtype and divide by the world size."""
        grads = [p.grad for p in parameters if p.grad is not None]
        by_dtype: Dict[torch.dtype, List[torch.Tensor]] = {}
        for grad in grads:
            by_dtype.setdefault(grad.dtype, []).append(grad)
        for group in by_dtype.values():
            flat = torch.cat([g.reshape(-1) for g in group])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            flat /= self.world_size
            offset = 0
            for grad in group:
                count = grad.numel()
                grad.copy_(flat[offset : offset + count].view_as(grad))
                offset += count

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        with torch.no_grad():
            for buffer in module.buffers():
                dist.broadcast(buffer.data, src=0)

    def reduce(self, value: torch.Tensor, op: str = "mean") -> torch.Tensor:
        value = value.clone()
        reduce_op = {
            "sum": dist.ReduceOp.SUM,
            "mean": dist.ReduceOp.SUM,
            "max": dist.ReduceOp.MAX,
            "min": dist.ReduceOp.MIN,
        }[op]
        dist.all_reduce(value, op=reduce_op)
        if op == "mean":
            value /= self.world_size
        return value

    def broadcast_object(self, obj: Any) -> Any:
        holder = [obj]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    # -- loaders --------------------------------------------------------------------------
    def shard_loader(self, loader: Any, shuffle_default: Optional[bool] = None) -> Any:
        """This rank's share of ``loader``.

        A loader with a ``shard(rank, world_size)`` method (conveyor's DataLoader) shards
        itself; a torch DataLoader is rebuilt around a ``DistributedSampler`` that keeps its
        shuffling, as Lightning does; anything else is returned unchanged. The shuffle seed (and
        a generator's state) is rank 0's on every rank, whether or not the user seeded anything:
        ranks that split different permutations would see some samples twice and others never.
        """
        if self.world_size > 1:
            self._agree_on_shuffle(loader)
        return shard_loader(loader, self.global_rank, self.world_size)

    def _agree_on_shuffle(self, loader: Any) -> None:
        if hasattr(loader, "shard") and hasattr(loader, "seed") and hasattr(loader, "_set_seed"):
            generator = getattr(loader, "generator", None)
            seed = loader.seed
            if seed is None and self.global_rank == 0:
                # what the loader itself would draw at its first iteration
                seed = int(torch.empty((), dtype=torch.int64).random_().item())
            seed, generator_state = self.broadcast_object(
                (seed, generator.get_state() if generator is not None else None)
            )
            loader._set_seed(seed)
            if generator is not None:
                generator.set_state(generator_state)
        elif isinstance(loader, DataLoader):
            seed = self.broadcast_object(int(os.environ.get("CONVEYOR_GLOBAL_SEED", 0)))
            loader._conveyor_shard_seed = seed


def shard_loader(loader: Any, rank: int, world_size: int) -> Any:
    if world_size <= 1:
        return loader
    if hasattr(loader, "shard") and callable(loader.shard):
        sharded = loader.shard(rank, world_size)
        return loader if sharded is None else sharded
    if not isinstance(loader, DataLoader):
        return loader
    if isinstance(loader.sampler, DistributedSampler) or loader.batch_sampler is None:
        return loader
    if isinstance(loader.dataset, torch.utils.data.IterableDataset):
        return loader
    shuffle = isinstance(loader.sampler, RandomSampler)
    if not isinstance(loader.sampler, (RandomSampler, SequentialSampler)):
        return loader  # a custom sampler: the user shards it
    seed = getattr(loader, "_conveyor_shard_seed", None)
    if seed is None:
        seed = int(os.environ.get("CONVEYOR_GLOBAL_SEED", 0))
    sampler: DistributedSampler[Any] = DistributedSampler(
        loader.dataset,
        num_replicas=world_size,
        rank=rank,
        shuffle=shuffle,
        seed=seed,
        drop_last=False,
    )
    return DataLoader(loader.dataset, sampler=sampler, **torch_loader_arguments(loader))
