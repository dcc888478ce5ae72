"""DataModule (Lightning 1.x semantics), VOCDataModule, the `conveyor fit/validate/test`
commands, and interop with a real `lightning` Trainer."""

from argparse import ArgumentParser

import pytest
import torch
from test_trainer import BoringModel, make_data
from torch.utils.data import DataLoader, IterableDataset, RandomSampler, SequentialSampler

import conveyor
from conveyor.datamodules import VOCDataModule
from conveyor.training import DataModule, Trainer


class TransformsDM(DataModule):
    """A datamodule.

    Args:
        batch_size: images per batch.
        flag: a boolean.
    """

    def __init__(self, batch_size: int = 4, flag: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.batch_size = batch_size
        self.flag = flag


def test_transforms_constructor_arguments():
    dm = TransformsDM(train_transforms="t", val_transforms="v", test_transforms="s")
    assert (dm.train_transforms, dm.val_transforms, dm.test_transforms) == ("t", "v", "s")
    dm.train_transforms = "x"
    assert dm.train_transforms == "x"
    assert dm.state_dict() == {}


def test_unimplemented_loader_raises():
    with pytest.raises(
        NotImplementedError,
        match="`train_dataloader` must be implemented to be used with the Trainer",
    ):
        DataModule().train_dataloader()
    with pytest.raises(NotImplementedError, match="`test_dataloader` must be implemented"):
        DataModule().test_dataloader()


def test_from_datasets():
    dm = DataModule.from_datasets(
        make_data(), make_data(), [make_data(), make_data()], batch_size=5
    )
    assert isinstance(dm.train_dataloader().sampler, RandomSampler)
    assert isinstance(dm.val_dataloader().sampler, SequentialSampler)
    assert len(dm.test_dataloader()) == 2 and dm.train_dataloader().batch_size == 5

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(3))

    assert (
        DataModule.from_datasets(Stream()).train_dataloader() is not None
    )  # not shuffled: no error


def test_argparse_classmethods():
    parser = TransformsDM.add_argparse_args(ArgumentParser())
    args = parser.parse_args(["--batch_size", "8", "--flag"])
    dm = TransformsDM.from_argparse_args(args)
    assert dm.batch_size == 8 and dm.flag is True
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["batch_size"] == "images per batch."
    assert "train_transforms" not in helps  # unannotated: skipped


def test_datamodule_state_in_checkpoint(tmp_path):
    class Stateful(DataModule):
        def __init__(self):
            super().__init__()
            self.counter = 0

        def train_dataloader(self):
            return DataLoader(make_data(), batch_size=8)

        def state_dict(self):
            return {"counter": 7}

        def load_state_dict(self, state):
            self.counter = state["counter"]

    trainer = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(BoringModel(), datamodule=Stateful())
    checkpoint = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)
    assert checkpoint[Stateful.__qualname__] == {"counter": 7}
    restored = Stateful()
    Trainer(max_epochs=2, enable_progress_bar=False, default_root_dir=tmp_path).fit(
        BoringModel(), datamodule=restored, ckpt_path=trainer.checkpoint_callback.best_model_path
    )
    assert restored.counter == 7


def test_setup_stage_and_teardown_calls(tmp_path):
    stages = []

    class Recording(DataModule):
        def setup(self, stage=None):
            stages.append(("setup", stage))

        def teardown(self, stage=None):
            stages.append(("teardown", stage))

        def train_dataloader(self):
            return DataLoader(make_data(), batch_size=8)

        def test_dataloader(self):
            return DataLoader(make_data(), batch_size=8)

    trainer = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir=tmp_path)
    dm = Recording()
    trainer.fit(BoringModel(), datamodule=dm)
    trainer.test(BoringModel(), datamodule=dm, verbose=False)
    assert stages == [
        ("setup", "fit"),
        ("teardown", "fit"),
        ("setup", "test"),
        ("teardown", "test"),
    ]


# -- VOCDataModule ----------------------------------------------------------------------------


@pytest.fixture
def synthetic_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("synthetic"))


def test_voc_segmentation_batches(synthetic_dir):
    dm = VOCDataModule(
        task="segmentation",
        image_size=48,
        batch_size=4,
        synthetic_dir=synthetic_dir,
        synthetic_train_images=12,
        synthetic_val_images=4,
    )
    assert dm.num_classes == 21
    dm.prepare_data()
    dm.setup("fit")
    images, masks = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 48, 48) and images.dtype == torch.float32
    assert masks.shape == (4, 48, 48) and masks.dtype == torch.int64
    values = set(masks.unique().tolist())
    assert values <= set(range(21)) | {255} and len(values - {0, 255}) > 0
    assert isinstance(dm.train_dataloader(), conveyor.DataLoader)
    assert len(dm.val_dataloader().dataset) == 4


@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_voc_default_transforms_run_natively(synthetic_dir, task):
    import warnings

    dm = VOCDataModule(
        task=task,
        image_size=64,
        batch_size=4,
        num_workers=2,
        synthetic_dir=synthetic_dir,
        synthetic_train_images=12,
        synthetic_val_images=4,
    )
    dm.prepare_data()
    dm.setup("fit")
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no transform forces the Python path
            batches = list(loader)
        assert loader.stats.path == "native" and len(batches) == len(loader)
        assert loader.stats.worker_mode == "thread"  # no process workers for our own collates


def test_voc_segmentation_batches_equal_the_python_path(synthetic_dir):
    dm = VOCDataModule(
        task="segmentation",
        image_size=56,
        batch_size=4,
        synthetic_dir=synthetic_dir,
        synthetic_train_images=12,
        synthetic_val_images=4,
    )
    dm.prepare_data()
    dm.setup("fit")
    loader = dm.val_dataloader()
    python = torch.utils.data.DataLoader(loader.dataset, batch_size=4, collate_fn=loader.collate_fn)
    for (images, masks), (ref_images, ref_masks) in zip(loader, python):
        assert (images - ref_images).abs().max() <= 1e-5
        assert masks.dtype == ref_masks.dtype == torch.int64 and torch.equal(masks, ref_masks)
    assert loader.stats.path == "native"


def test_voc_detection_targets_follow_the_image(synthetic_dir):
    dm = VOCDataModule(
        task="detection",
        image_size=64,
        batch_size=3,
        synthetic_dir=synthetic_dir,
        synthetic_train_images=6,
        synthetic_val_images=3,
        normalize=False,
    )
    dm.prepare_data()
    dm.setup("fit")
    loader = dm.val_dataloader()
    images, targets = next(iter(loader))
    raw = conveyor.datasets.VOCDetection(dm.root, image_set="val", target_format="boxes")
    for index, (_image, target) in enumerate(zip(images, targets)):
        source, expected = raw[index]
        sy, sx = 64 / source.shape[-2], 64 / source.shape[-1]
        scale = torch.tensor([sx, sy, sx, sy])
        edges = expected["boxes"] - torch.tensor([1.0, 1.0, 0.0, 0.0])  # 1-based xmin/ymin
        assert torch.allclose(target["boxes"], edges * scale, atol=1e-4)
        assert torch.equal(target["labels"], expected["labels"])
        assert torch.equal(target["iscrowd"], expected["difficult"].long())
        assert int(target["image_id"]) == int("".join(c for c in raw.ids[index] if c.isdigit()))
    assert loader.stats.path == "native"


def test_voc_detection_batches(synthetic_dir):
    dm = VOCDataModule(
        task="detection",
        image_size=64,
        batch_size=3,
        synthetic_dir=synthetic_dir,
        synthetic_train_images=6,
        synthetic_val_images=3,
        normalize=False,
    )
    dm.prepare_data()
    dm.setup("fit")
    images, targets = next(iter(dm.val_dataloader()))
    assert len(images) == len(targets) == 3 and images[0].shape == (3, 64, 64)
    target = targets[0]
    assert target["boxes"].dtype == torch.float32 and target["boxes"].shape[1] == 4
    assert (
        target["labels"].dtype == torch.int64
        and 1 <= int(target["labels"].min()) <= int(target["labels"].max()) <= 20
    )
    assert set(target) == {"boxes", "labels", "iscrowd", "area", "image_id"}
    assert (target["boxes"] >= 0).all() and (target["boxes"] <= 64).all()


def test_voc_custom_transforms_are_used(synthetic_dir):
    calls = []

    def transforms(image, target):  # user transforms get torchvision's PIL image and mask
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as F

        assert target.mode == "P"
        calls.append(1)
        default = VOCDataModule(task="segmentation", image_size=16).default_transforms(False)
        image, mask = default(image, tv_tensors.Mask(F.pil_to_tensor(target)))
        return image, mask[0]

    dm = VOCDataModule(
        task="segmentation",
        synthetic_dir=synthetic_dir,
        synthetic_train_images=4,
        synthetic_val_images=2,
        batch_size=2,
        train_transforms=transforms,
    )
    dm.prepare_data()
    dm.setup("fit")
    images, _ = next(iter(dm.train_dataloader()))
    assert calls and images.shape[-1] == 16


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"task": "classify"}, "task"),
        ({"image_size": 2}, "image_size"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_voc_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VOCDataModule(**kwargs)


def test_voc_missing_data_dir_raises(tmp_path):
    dm = VOCDataModule(data_dir=str(tmp_path / "nothing"), task="segmentation")
    dm.prepare_data()
    with pytest.raises(RuntimeError, match="Dataset not found"):
        dm.setup("fit")


def test_voc_on_real_samples(realvoc, tmp_path):
    """The real PASCAL VOC2007 images shipped by mmfewshot, split into train/val in a copy."""
    import shutil

    source = realvoc / "open-mmlab__mmfewshot" / "tests" / "data" / "VOCdevkit" / "VOC2007"
    voc_dir = tmp_path / "VOCdevkit" / "VOC2007"
    shutil.copytree(source, voc_dir)
    ids = (voc_dir / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    (voc_dir / "ImageSets" / "Main" / "train.txt").write_text("\n".join(ids[:3]) + "\n")
    (voc_dir / "ImageSets" / "Main" / "val.txt").write_text("\n".join(ids[3:]) + "\n")
    dm = VOCDataModule(
        data_dir=str(tmp_path), year="2007", task="detection", batch_size=2, image_size=64
    )
    dm.setup("fit")
    images, targets = next(iter(dm.train_dataloader()))
    assert len(images) == 2 and all(image.shape == (3, 64, 64) for image in images)
    assert all(
        t["boxes"].shape[1] == 4 and len(t["boxes"]) == len(t["labels"]) >= 1 for t in targets
    )
    assert all(1 <= int(label) <= 20 for t in targets for label in t["labels"])
    assert len(dm.val_dataloader().dataset) == len(ids) - 3


# -- metrics ----------------------------------------------------------------------------------


def test_mean_iou_and_voc_ap():
    from conveyor.training.metrics import ConfusionMatrix, DetectionAP, average_precision

    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[0, 1], [2, 2]]), torch.tensor([[0, 1], [2, 255]]))
    assert cm.mean_iou() == pytest.approx(1.0)
    cm.update(torch.tensor([[1]]), torch.tensor([[0]]))
    assert cm.iou_per_class()[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.zeros(2, 2), torch.zeros(3, 3))
    assert average_precision([0.5, 1.0], [1.0, 0.5]) == pytest.approx(0.75)
    ap = DetectionAP()
    ap.update(
        [
            {
                "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
                "labels": torch.tensor([1, 1]),
                "scores": torch.tensor([0.9, 0.8]),
            }
        ],
        [
            {
                "boxes": torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60]]),
                "labels": torch.tensor([1, 1]),
                "iscrowd": torch.tensor([0, 0]),
            }
        ],
    )
    assert ap.compute()["mAP"] == pytest.approx(0.5)  # first hit at recall 0.5 precision 1


# -- command line -----------------------------------------------------------------------------


def test_conveyor_fit_and_validate_cli(tmp_path, monkeypatch, capsys):
    from conveyor.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVEYOR_CACHE", str(tmp_path / "cache"))
    common = [
        "--image_size",
        "32",
        "--synthetic_train_images",
        "16",
        "--synthetic_val_images",
        "8",
        "--batch_size",
        "8",
        "--model",
        "lraspp_mobilenet_v3_small",
    ]
    assert main(["fit", "--max_epochs", "2", "--enable_progress_bar", "false", *common]) == 0
    out = capsys.readouterr().out
    assert "epoch 0: val_mIoU=" in out and "epoch 1: val_mIoU=" in out
    checkpoints = list((tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt"))
    assert [c.name for c in checkpoints] == ["epoch=1-step=4.ckpt"]
    assert (
        main(["validate", "--enable_progress_bar", "false"]) == 0
    )  # newest checkpoint, its hparams
    out = capsys.readouterr().out
    assert "val_mIoU=" in out and "epoch=1-step=4.ckpt" in out
    assert main(["test", "--ckpt_path", str(checkpoints[0]), "--enable_progress_bar", "false"]) == 0
    assert "test_mIoU=" in capsys.readouterr().out


def test_conveyor_fit_help_lists_docstring_help(capsys):
    from conveyor.cli import main

    with pytest.raises(SystemExit) as info:
        main(["fit", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for text in (
        "--max_epochs",
        "--precision",
        "--batch_size",
        "--task",
        "--model",
        "--lr",
        "stop after this many epochs",
        "side length images are resized to",
    ):
        assert text in out


# -- interop ----------------------------------------------------------------------------------


def test_lightning_trainer_consumes_conveyor_loader(tmp_path):
    lightning = pytest.importorskip("lightning")

    seen = []

    class LitModel(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            seen.append(x.shape[0])
            return torch.nn.functional.mse_loss(self.layer(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    loader = conveyor.DataLoader(make_data(40), batch_size=8, shuffle=True, seed=0)
    trainer = lightning.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(LitModel(), loader)
    assert trainer.global_step == 10 and seen == [8] * 10


def test_conveyor_detection_fit_and_test_cli(tmp_path, monkeypatch, capsys):
    from conveyor.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVEYOR_CACHE", str(tmp_path / "cache"))
    common = [
        "--task",
        "detection",
        "--image_size",
        "64",
        "--synthetic_train_images",
        "4",
        "--synthetic_val_images",
        "2",
        "--batch_size",
        "2",
        "--enable_progress_bar",
        "false",
    ]
    assert (
        main(["fit", "--max_epochs", "1", "--limit_train_batches", "1", "--lr", "0.001", *common])
        == 0
    )
    assert "epoch 0: val_mAP=" in capsys.readouterr().out
    assert main(["test", "--enable_progress_bar", "false"]) == 0
    out = capsys.readouterr().out
    assert "test_mAP=" in out and "epoch=0-step=1.ckpt" in out


@pytest.mark.parametrize("max_steps", [1, 2, 3, 5, 6])
def test_voc_module_one_cycle_schedule_runs_for_very_short_trainings(max_steps):
    # OneCycleLR divides by its warm-up length: a 5-step run once raised ZeroDivisionError
    from conveyor.datamodules.voc_module import VOCModule

    model = VOCModule(task="segmentation", num_classes=3)
    model._trainer = type(
        "FakeTrainer",
        (),
        {
            "num_training_batches": max_steps,
            "max_steps": max_steps,
            "max_epochs": 1,
            "_accumulation_for_epoch": lambda self, epoch: 1,
        },
    )()
    configured = model.configure_optimizers()
    if max_steps < 2:
        assert isinstance(configured, torch.optim.Optimizer)
        return
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    for _ in range(max_steps):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] >= 0
