"""``VOCDataModule``: PASCAL VOC detection or segmentation, real, synthetic, or any VOC-format
folder of the user's own classes (``VOCFolder``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, cast

from conveyor.datamodules.voc_transforms import (
    DetectionCollate,
    collate_detection,
    detection_transforms,
    segmentation_collate,
    segmentation_transforms,
)
from conveyor.datasets import VOCDetection, VOCFolder, VOCSegmentation, make_synthetic_voc
from conveyor.datasets.folder import folder_classes, holdout_ids
from conveyor.loader import DataLoader
from conveyor.training.datamodule import DataModule

_TASKS = ("detection", "segmentation")


class VOCDataModule(DataModule):
    """PASCAL VOC as a DataModule (pl_bolts' VOCDetectionDataModule, plus segmentation).

    Args:
        data_dir: a VOC-format folder in any layout (``VOCdevkit``, CVAT, labelme2voc,
            Roboflow, labelImg; read with ``VOCFolder``, classes from the data), or with
            ``download=True`` the directory receiving ``VOCdevkit``; None trains on a synthetic
            VOC-format set generated once into ``synthetic_dir``.
        classes: the class names of a ``data_dir`` folder, comma-separated (or a list);
            default: its labelmap.txt / class_names.txt / classes.txt, else every name in its
            annotations, sorted. ``num_classes`` follows (plus background).
        val_fraction: for a folder without split files or folders: the share of its samples
            held out (deterministically, by ``seed``) for validation and test.
        year: VOC year ("2007" to "2012").
        task: "detection" (boxes) or "segmentation" (masks).
        image_size: side length images are resized to.
        num_workers: loader worker threads.
        normalize: normalize images with the ImageNet mean and std.
        batch_size: images per batch.
        shuffle: shuffle the training set.
        pin_memory: pin batches in page-locked memory (only used with CUDA).
        drop_last: drop the last incomplete training batch.
        download: download the dataset into data_dir in prepare_data.
        synthetic_train_images: images in the synthetic training split.
        synthetic_val_images: images in the synthetic validation split.
        synthetic_dir: where the synthetic set is written (default: ~/.cache/conveyor).
        seed: seed of the loaders' shuffling (``conveyor fit`` also passes it to seed_everything).
        train_transforms: replaces the default training transform (called as transforms(image, target)).
        val_transforms: replaces the default validation transform.
        test_transforms: replaces the default test transform.

    The default transforms are ``torchvision.transforms.v2`` pipelines over the typed datasets
    (``VOCSegmentation(target_format="mask")``, ``VOCDetection(target_format="boxes")``), which
    ``conveyor.DataLoader`` runs natively; batches are float images ``[B, 3, S, S]`` with int64
    masks ``[B, S, S]`` (255 = void), or pl_bolts' ``(images, targets)`` tuples. User transforms
    receive torchvision's items (PIL image and P-mode mask or XML dict), as before.
    """

    name = "voc"

    def __init__(
        self,
        data_dir: Optional[str] = None,
        year: str = "2012",
        task: str = "detection",
        image_size: int = 256,
        num_workers: int = 0,
        normalize: bool = True,
        batch_size: int = 16,
        shuffle: bool = True,
        pin_memory: bool = True,
        drop_last: bool = False,
        download: bool = False,
        synthetic_train_images: int = 200,
        synthetic_val_images: int = 50,
        synthetic_dir: Optional[str] = None,
        seed: int = 0,
        train_transforms: Optional[Callable] = None,
        val_transforms: Optional[Callable] = None,
        test_transforms: Optional[Callable] = None,
        classes: Optional[str] = None,
        val_fraction: float = 0.2,
    ) -> None:
        super().__init__(
            train_transforms=train_transforms,
            val_transforms=val_transforms,
            test_transforms=test_transforms,
        )
        if task not in _TASKS:
            raise ValueError(f"task={task!r}: use 'detection' or 'segmentation'")
        if image_size < 8:
            raise ValueError(f"image_size={image_size}: must be at least 8")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be at least 1")
        self.data_dir = os.path.expanduser(data_dir) if data_dir else None
        self.year, self.task, self.image_size = str(year), task, image_size
        self.num_workers, self.normalize, self.batch_size = num_workers, normalize, batch_size
        self.shuffle, self.pin_memory, self.drop_last, self.download = (
            shuffle,
            pin_memory,
            drop_last,
            download,
        )
        self.synthetic_train_images, self.synthetic_val_images = (
            synthetic_train_images,
            synthetic_val_images,
        )
        self.synthetic_dir = synthetic_dir
        self.seed = seed
        self.val_fraction = val_fraction
        if isinstance(classes, str):
            # a list from here on (the saved hyperparameters hold the list too)
            classes = cast(Any, [name.strip() for name in classes.split(",") if name.strip()])
        self._classes = tuple(classes) if classes else None
        self.datasets: Dict[str, Any] = {}
        self._hparams_initial = {
            k: v
            for k, v in locals().items()
            if k not in ("self", "__class__") and not k.endswith("transforms")
        }

    @property
    def is_folder(self) -> bool:
        """``data_dir`` is read as a VOC-format folder (``VOCFolder``)."""
        return self.data_dir is not None and not self.download and os.path.isdir(self.data_dir)

    @property
    def folder_root(self) -> str:
        """The folder ``VOCFolder`` reads (``VOCdevkit/VOC<year>`` when the tree has it)."""
        data_dir = self.data_dir
        if data_dir is None:
            raise ValueError("VOCDataModule.folder_root: no data_dir was given")
        devkit = os.path.join(data_dir, "VOCdevkit", f"VOC{self.year}")
        return devkit if os.path.isdir(devkit) else data_dir

    @property
    def classes(self) -> tuple:
        """The class names of labels 1, 2, ... (VOC's 20 unless ``data_dir`` is a folder)."""
        if self._classes is None:
            if self.is_folder:
                self._classes = folder_classes(self.folder_root)[0]
            else:
                from conveyor.voc import VOC_CLASSES

                self._classes = VOC_CLASSES
        return self._classes

    @property
    def num_classes(self) -> int:
        """Classes including background (label 0): 21 for VOC, else the folder's plus one."""
        return len(self.classes) + 1

    @property
    def root(self) -> str:
        """The directory that holds ``VOCdevkit``."""
        if self.data_dir is not None:
            return self.data_dir
        base = self.synthetic_dir or os.path.join(
            os.environ.get("CONVEYOR_CACHE", Path.home() / ".cache" / "conveyor"), "synthetic-voc"
        )
        return os.path.join(
            str(base), f"v2-{self.year}-{self.synthetic_train_images}-{self.synthetic_val_images}"
        )

    def prepare_data(self) -> None:
        """Download (``download=True``) or generate the synthetic set once."""
        if self.data_dir is None:
            self._make_synthetic()
            return
        if self.download:
            cls = VOCDetection if self.task == "detection" else VOCSegmentation
            for image_set in ("train", "val"):
                cls(self.data_dir, year=self.year, image_set=image_set, download=True)

    def _make_synthetic(self) -> None:
        marker = Path(self.root) / ".complete"
        if marker.is_file():
            return
        total = self.synthetic_train_images + self.synthetic_val_images
        make_synthetic_voc(
            self.root,
            num_images=total,
            year=self.year,
            seed=self.seed,
            image_size=(160, 120),
            val_fraction=self.synthetic_val_images / total,
        )
        marker.write_text("ok\n")

    def default_transforms(self, train: bool) -> Callable:
        """The default v2 pipeline for the typed datasets (see the class docstring)."""
        build = detection_transforms if self.task == "detection" else segmentation_transforms
        return build(self.image_size, train=train, normalize=self.normalize)

    def _folder_split(self, image_set: str) -> dict:
        """VOCFolder arguments selecting ``image_set``: its split file or folder when the
        tree has one, else a deterministic held-out share (``val_fraction``) of every sample."""
        from conveyor.datasets.folder_layout import index_folder

        index = index_folder(self.folder_root, None, self.task)
        available = {name.lower() for name in index.splits}
        aliases = {"val": ("val", "valid", "validation"), "test": ("test", "val", "valid")}
        for name in aliases.get(image_set, (image_set,)):
            if name in available:
                return {"split": name}
        if available and image_set == "train" and "trainval" in available:
            return {"split": "trainval"}
        train_ids, held_ids = holdout_ids(index.ids, self.val_fraction, self.seed)
        return {"split": None, "ids": train_ids if image_set == "train" else held_ids}

    def _folder_dataset(self, image_set: str, transforms: Optional[Callable], train: bool):
        kwargs = dict(self._folder_split(image_set), task=self.task, classes=self.classes)
        if transforms is not None:  # user transforms get torchvision's items
            typed = "dict" if self.task == "detection" else "pil"
            return VOCFolder(self.folder_root, transforms=transforms, target_format=typed, **kwargs)
        dataset = VOCFolder(
            self.folder_root,
            transforms=self.default_transforms(train),
            unknown_classes="skip",
            **kwargs,
        )
        if self.task == "detection":  # xmin/ymin are 1-based, as in VOC (see _dataset)
            boxes = dataset.native_annotations.boxes
            boxes[:, :2] = (boxes[:, :2] - 1).clip(min=0)
        return dataset

    def _dataset(self, image_set: str, transforms: Optional[Callable], train: bool):
        if self.is_folder:
            return self._folder_dataset(image_set, transforms, train)
        cls = VOCDetection if self.task == "detection" else VOCSegmentation
        if transforms is not None:  # user transforms get torchvision's items
            return cls(self.root, year=self.year, image_set=image_set, transforms=transforms)
        typed = "boxes" if self.task == "detection" else "mask"
        dataset = cls(
            self.root,
            year=self.year,
            image_set=image_set,
            target_format=typed,
            transforms=self.default_transforms(train),
        )
        if typed == "boxes":
            # VOC's xmin/ymin are 1-based pixel indices: their left/top edges are one less
            # (xmax/ymax already are right/bottom edges); both loader paths read these arrays
            dataset.native_annotations.boxes[:, :2] -= 1
        return dataset

    def setup(self, stage: Optional[str] = None) -> None:
        """Build the train (``train``) and validation/test (``val``) splits."""
        if stage in (None, "fit"):
            self.datasets["train"] = self._dataset("train", self.train_transforms, train=True)
        if stage in (None, "fit", "validate"):
            self.datasets["val"] = self._dataset("val", self.val_transforms, train=False)
        if stage in (None, "test", "predict"):
            test_split = "test" if self.is_folder else "val"  # a folder may have a test split
            self.datasets["test"] = self._dataset(test_split, self.test_transforms, train=False)

    def _loader(self, split: str, shuffle: bool, drop_last: bool):
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        import torch

        kwargs: Dict[str, Any] = dict(
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            drop_last=drop_last,
        )
        dataset = self.datasets[split]
        if dataset.target_format == "mask":  # default transforms: [B, S, S] masks, built natively
            kwargs["collate_fn"] = segmentation_collate
        elif dataset.target_format == "boxes":
            kwargs["collate_fn"] = DetectionCollate(dataset.ids)
            # a light per-batch collate: finisher threads run it off the training thread, so the
            # native pipeline needs no process workers
            kwargs["worker_mode"] = "thread"
        elif self.task == "detection":
            kwargs["collate_fn"] = collate_detection
        return DataLoader(dataset, seed=self.seed, **kwargs)

    def train_dataloader(self):
        return self._loader("train", self.shuffle, self.drop_last)

    def val_dataloader(self):
        return self._loader("val", False, False)

    def test_dataloader(self):
        return self._loader("test", False, False)

    def predict_dataloader(self):
        return self._loader("test", False, False)
