"""strategy="ddp" on the CPU with gloo and 2 processes: each rank reads a disjoint shard of every
loader, weights stay identical after every step, metrics are reduced, only rank 0 writes."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import conveyor

SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    import conveyor
    from conveyor.training import Callback, Module, Trainer

    out, loader_kind, launcher = sys.argv[1], sys.argv[2], sys.argv[3]
    conveyor.seed_everything(0)
    x = torch.randn(48, 4)
    y = x.sum(1, keepdim=True)
    data = TensorDataset(x, y, torch.arange(48))

    def make(shuffle):
        if loader_kind == "conveyor":
            return conveyor.DataLoader(data, batch_size=4, shuffle=shuffle, seed=3)
        return DataLoader(data, batch_size=4, shuffle=shuffle)

    class Model(Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)
            self.seen, self.val_seen, self.weights = [], [], []

        def training_step(self, batch, batch_idx):
            x, y, idx = batch
            self.seen += [(self.current_epoch, int(i)) for i in idx]
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def on_train_batch_end(self, outputs, batch, batch_idx, unused=0):
            self.weights.append(torch.cat([p.detach().flatten() for p in self.parameters()]).tolist())

        def validation_step(self, batch, batch_idx):
            x, y, idx = batch
            self.val_seen += [int(i) for i in idx]
            self.log("val_rank", float(self.global_rank))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    model = Model()
    trainer = Trainer(max_epochs=2, strategy="ddp", devices=2 if launcher == "spawn" else None,
                      accelerator="cpu", enable_progress_bar=False, num_sanity_val_steps=0,
                      default_root_dir=os.path.join(out, "root"))
    trainer.fit(model, make(True), make(False))
    rank = trainer.global_rank
    with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
        json.dump({"seen": model.seen, "val_seen": model.val_seen, "weights": model.weights,
                   "world_size": trainer.world_size, "val_rank": trainer.callback_metrics["val_rank"],
                   "steps": trainer.global_step}, handle)
""")


def _run(tmp_path, loader_kind, launcher):
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(Path(conveyor.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
        OMP_NUM_THREADS="1",
    )
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    if launcher == "spawn":
        command = [sys.executable, str(script), str(tmp_path), loader_kind, launcher]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--standalone",
            str(script),
            str(tmp_path),
            loader_kind,
            launcher,
        ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.parametrize(
    "loader_kind,launcher", [("torch", "spawn"), ("conveyor", "spawn"), ("torch", "torchrun")]
)
def test_ddp_two_gloo_processes(tmp_path, loader_kind, launcher):
    rank0, rank1 = _run(tmp_path, loader_kind, launcher)
    assert rank0["world_size"] == rank1["world_size"] == 2
    for epoch in (0, 1):
        a = {i for e, i in rank0["seen"] if e == epoch}
        b = {i for e, i in rank1["seen"] if e == epoch}
        assert not a & b and a | b == set(range(48)), (epoch, sorted(a), sorted(b))
    assert not set(rank0["val_seen"]) & set(rank1["val_seen"])
    assert set(rank0["val_seen"]) | set(rank1["val_seen"]) == set(range(48))
    # 48 samples / 2 ranks / batch 4 = 6 steps per epoch; weights identical after each one
    assert rank0["steps"] == rank1["steps"] == 12 and len(rank0["weights"]) == 12
    torch.testing.assert_close(
        torch.tensor(rank0["weights"]), torch.tensor(rank1["weights"]), rtol=0, atol=0
    )
    # the epoch metric is reduced across ranks: mean of 0 and 1
    assert rank0["val_rank"] == rank1["val_rank"] == pytest.approx(0.5)
    # only rank 0 wrote logs and checkpoints
    versions = list((tmp_path / "root" / "lightning_logs").iterdir())
    assert [v.name for v in versions] == ["version_0"]
    assert [p.name for p in (versions[0] / "checkpoints").iterdir()] == ["epoch=1-step=12.ckpt"]
