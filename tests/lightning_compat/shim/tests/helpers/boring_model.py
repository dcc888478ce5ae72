"""A minimal trainable module and random data, shaped as Lightning's tests expect.

Lightning's tests count steps and checkpoints against these shapes: 64 samples of 32 random
features per loader, batch size 1 (so 64 optimizer steps per epoch), a ``Linear(32, 2)`` layer
pulled towards ones, SGD(lr=0.1) with a StepLR stepped every epoch. Every hook a test may
override or set to ``None`` (``training_epoch_end``, ``validation_epoch_end``...) exists.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

import conveyor


class RandomDataset(Dataset):
    """``length`` rows of ``size`` standard-normal features, drawn once at construction."""

    def __init__(self, size: int, length: int):
        self.len = length
        self.data = torch.randn(length, size)

    def __getitem__(self, index):
        return self.data[index]

    def __len__(self):
        return self.len


class BoringModel(conveyor.Module):
    """One linear layer trained to output ones; val/test steps return their loss."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(32, 2)

    def forward(self, x):
        return self.layer(x)

    def loss(self, batch, prediction):
        return F.mse_loss(prediction, torch.ones_like(prediction))

    def step(self, x):
        return self.loss(x, self(x))

    def training_step(self, batch, batch_idx):
        return {"loss": self.loss(batch, self(batch))}

    def training_step_end(self, training_step_outputs):
        return training_step_outputs

    def training_epoch_end(self, outputs) -> None:
        torch.stack([output["loss"] for output in outputs]).mean()

    def validation_step(self, batch, batch_idx):
        return {"x": self.loss(batch, self(batch))}

    def validation_epoch_end(self, outputs) -> None:
        torch.stack([output["x"] for output in outputs]).mean()

    def test_step(self, batch, batch_idx):
        return {"y": self.loss(batch, self(batch))}

    def test_epoch_end(self, outputs) -> None:
        torch.stack([output["y"] for output in outputs]).mean()

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.layer.parameters(), lr=0.1)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)]

    def train_dataloader(self):
        return conveyor.DataLoader(RandomDataset(32, 64))

    def val_dataloader(self):
        return conveyor.DataLoader(RandomDataset(32, 64))

    def test_dataloader(self):
        return conveyor.DataLoader(RandomDataset(32, 64))

    def predict_dataloader(self):
        return conveyor.DataLoader(RandomDataset(32, 64))


class BoringDataModule(conveyor.DataModule):
    """Random splits of one 64 x 32 dataset, one loader per stage."""

    def __init__(self, data_dir: str = "./"):
        super().__init__()
        self.data_dir = data_dir
        self.random_full = RandomDataset(32, 64 * 4)

    def setup(self, stage=None):
        self.random_train = torch.utils.data.Subset(self.random_full, range(64))
        self.random_val = torch.utils.data.Subset(self.random_full, range(64, 128))
        self.random_test = torch.utils.data.Subset(self.random_full, range(128, 192))
        self.random_predict = torch.utils.data.Subset(self.random_full, range(192, 256))

    def train_dataloader(self):
        return conveyor.DataLoader(self.random_train)

    def val_dataloader(self):
        return conveyor.DataLoader(self.random_val)

    def test_dataloader(self):
        return conveyor.DataLoader(self.random_test)

    def predict_dataloader(self):
        return conveyor.DataLoader(self.random_predict)
