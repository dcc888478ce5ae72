"""``strategy="ddp_spawn"``: run each rank in a process started by
``torch.multiprocessing.start_processes``, as Lightning 1.6 does.

The trainer, the model and the loaders are pickled into N fresh processes (``spawn``); rank 0
sends back the trained weights, the metrics and the checkpoint callbacks' state, and the calling
process copies them into its own model and trainer, so ``trainer.fit(model)`` leaves ``model``
trained, as with any other strategy. Unlike re-running the command line, this works under
pytest, in notebooks and with ``python -c``. A rank that raises or dies stops every rank and
raises here with that rank's error.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
import torch.multiprocessing as mp

from conveyor.training.distributed import _free_port

_RESULT_FILE = "rank0_results.pt"


class SpawnedRankFailed(RuntimeError):
    """A ``ddp_spawn`` rank raised, died or did not finish in time."""


def _run_rank(
    rank: int, trainer: Any, model: Any, stage: str, datamodule, ckpt_path, loaders, env, out
):
    os.environ.update(env, RANK=str(rank), LOCAL_RANK=str(rank))
    try:
        output = trainer._run(model, stage, datamodule, ckpt_path, **loaders)
    except BaseException:
        # when one rank fails the others fail next (a broken collective): keep the time and
        # traceback of each so that the parent can name the rank that failed first
        with open(os.path.join(out, f"rank{rank}.error"), "w") as handle:
            failed_at = getattr(trainer, "_failed_at", None) or time.time()
            handle.write(f"{failed_at!r}\n{traceback.format_exc()}")
        raise
    if rank != 0:
        return
    results = {
        "output": output,
        "state_dict": model.state_dict(),
        "current_epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "callback_metrics": trainer.callback_metrics,
        "logged_metrics": trainer.logged_metrics,
        "progress_bar_metrics": trainer.progress_bar_metrics,
        "callbacks": {callback.state_key: callback.state_dict() for callback in trainer.callbacks},
    }
    torch.save(results, os.path.join(out, _RESULT_FILE))


def _first_failure(out: str, rank: int, message: str):
    failures = []
    for name in os.listdir(out):
        if name.startswith("rank") and name.endswith(".error"):
            with open(os.path.join(out, name)) as handle:
                when, _, text = handle.read().partition("\n")
            failures.append((float(when), int(name[4:-6]), text))
    if not failures:
        return rank, message
    _, rank, text = min(failures)
    return rank, text


def spawn_run(
    trainer: Any,
    model: Any,
    stage: str,
    datamodule,
    ckpt_path: Optional[Union[str, Path]],
    loaders: Dict[str, Any],
    num_processes: int,
    timeout: Optional[float],
) -> Any:
    """Run ``trainer._run`` on ``num_processes`` spawned ranks; return rank 0's result.

    Raises:
        SpawnedRankFailed: a rank raised (its traceback is included), exited without finishing,
            or the run took longer than ``timeout`` seconds.
    """
    env = {
        "MASTER_ADDR": os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": str(num_processes),
    }
    with tempfile.TemporaryDirectory(prefix="conveyor_ddp_spawn_") as out:
        context = mp.start_processes(
            _run_rank,
            args=(trainer, model, stage, datamodule, ckpt_path, loaders, env, out),
            nprocs=num_processes,
            join=False,
            start_method="spawn",
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not context.join(timeout=1.0):
                if deadline is not None and time.monotonic() > deadline:
                    raise SpawnedRankFailed(
                        f"ddp_spawn: the {num_processes} ranks did not finish within {timeout} s"
                    )
        except mp.ProcessRaisedException as error:
            rank, message = _first_failure(out, error.error_index, str(error))
            raise SpawnedRankFailed(f"ddp_spawn: rank {rank} raised:\n{message}") from None
        except mp.ProcessExitedException as error:
            raise SpawnedRankFailed(
                f"ddp_spawn: rank {error.error_index} died (exit code {error.exit_code}"
                f"{', signal ' + error.signal_name if error.signal_name else ''}); "
                "the other ranks were stopped"
            ) from None
        finally:
            for process in context.processes:
                if process.is_alive():
                    process.terminate()
                    process.join(5)
        results = torch.load(os.path.join(out, _RESULT_FILE), weights_only=False)
    model.load_state_dict(results["state_dict"])
    trainer.current_epoch = results["current_epoch"]
    trainer.global_step = results["global_step"]
    trainer.callback_metrics.update(results["callback_metrics"])
    trainer.logged_metrics.update(results["logged_metrics"])
    trainer.progress_bar_metrics.update(results["progress_bar_metrics"])
    for callback in trainer.callbacks:
        state = results["callbacks"].get(callback.state_key)
        if state:
            if getattr(callback, "dirpath", "") is None:  # set by the rank's setup()
                callback.dirpath = state.get("dirpath")
            callback.load_state_dict(state)
    return results["output"]
