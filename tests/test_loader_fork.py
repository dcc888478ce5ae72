"""Process workers forked while conveyor's native threads are alive (conveyor.loader.fork_safety).

fork() copies a live native engine into the worker process without its threads; freeing that copy
there (the child's cyclic GC, or a close()) used to join threads that do not exist in the child
and wait forever in pthread_cond_destroy. Each case runs in a subprocess with a timeout, so a
regression fails the test instead of hanging the suite."""

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch.utils.data as tud

import conveyor
from conveyor import DataLoader

# the subprocess imports the conveyor this test imported (installed, or the source tree)
PYTHON_DIR = Path(conveyor.__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import gc, os, sys, warnings
    warnings.simplefilter("error")
    import torch
    import torch.utils.data as tud
    from torchvision.transforms import v2
    from conveyor import DataLoader, datasets
    from conveyor.collate import detection_collate

    gc.disable()  # the parent's garbage must still exist when the workers are forked
    root = sys.argv[1]
    datasets.make_synthetic_voc(root, num_images=16, image_size=(96, 72), seed=3)

    def native_loader():
        transforms = v2.Compose([v2.ToImage(), v2.Resize((40, 40), antialias=True),
                                 v2.ToDtype(torch.float32, scale=True)])
        dataset = datasets.VOCDetection(root, image_set="trainval", transforms=transforms,
                                        target_format="boxes")
        return DataLoader(dataset, batch_size=2, num_workers=2, worker_mode="thread",
                          collate_fn=detection_collate)

    # an engine alive mid-epoch (its threads wait on the engine's condition variables) ...
    alive = native_loader()
    alive_iterator = iter(alive)
    next(alive_iterator)
    # ... and one the parent dropped in a reference cycle, not yet collected
    dropped = native_loader()
    dropped_iterator = iter(dropped)
    next(dropped_iterator)
    cycle = [dropped, dropped_iterator]
    cycle.append(cycle)
    del dropped, dropped_iterator, cycle
    assert alive.stats.path == "native"

    class Squares(tud.Dataset):
        def __len__(self):
            return 12

        def __getitem__(self, index):
            return torch.tensor([index * index])

    def init(worker_id):
        gc.collect()  # frees the dropped engine's copy in this worker
        try:
            next(alive_iterator)  # an inherited engine cannot run here: a clear error
        except RuntimeError as error:
            assert "fork()" in str(error), error
        else:
            raise AssertionError("the inherited engine ran in a worker process")
        alive_iterator.close()  # stopping it here is a no-op: its threads stayed in the parent

    loader = DataLoader(Squares(), batch_size=3, num_workers=2, worker_mode="process",
                        worker_init_fn=init)
    values = torch.cat(list(loader)).flatten().tolist()
    assert values == [i * i for i in range(12)], values
    assert loader.stats.worker_mode == "process"
    # the parent's engine is untouched: its epoch goes on
    rest = list(alive_iterator)
    assert len(rest) == 7, len(rest)
    print("OK")
    """
)


def test_process_workers_forked_with_native_engines_alive_do_not_hang(tmp_path):
    script = tmp_path / "fork_after_native.py"
    script.write_text(SCRIPT)
    try:
        result = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "voc")],
            env={"PYTHONPATH": str(PYTHON_DIR), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=180,
        )
    except subprocess.TimeoutExpired as expired:  # the regression: a worker hangs in ~Engine
        pytest.fail(f"process workers forked after native threads hung:\n{expired.stderr}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("OK"), result.stdout + result.stderr


class Numbers(tud.Dataset):
    def __len__(self):
        return 30

    def __getitem__(self, index):
        return index


def test_two_threads_calling_next_on_one_process_iterator_share_its_batches():
    """torch's iterator is not thread-safe (two callers could wait forever for one batch):
    each batch goes to exactly one of the threads, and both end."""
    iterator = iter(DataLoader(Numbers(), batch_size=3, num_workers=2, worker_mode="process"))
    got, errors = [], []

    def consume():
        try:
            for batch in iterator:
                got.append(batch.tolist())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=consume, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a thread waits forever"
    assert not errors
    assert sorted(got) == [[i, i + 1, i + 2] for i in range(0, 30, 3)]
