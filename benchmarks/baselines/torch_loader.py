"""Baseline: ``torch.utils.data.DataLoader`` (worker processes) + torchvision's VOC datasets.

Runs with whatever Pillow the interpreter has: the project's Pillow, or pillow-simd in
``benchmarks/.venv-pillow-simd``. Detection and segmentation datasets are wrapped with
``wrap_dataset_for_transforms_v2`` so the v2 transforms move boxes and masks with the image,
which is what conveyor does too.
"""

from __future__ import annotations

from pipelines import torchvision_transforms

YEAR = "2012"


def detection_collate(batch):
    """Stacked images and a list of per-image target dicts (what detection models take)."""
    import torch

    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def describe() -> dict:
    import PIL
    import torch
    import torchvision
    from torchvision import datasets  # noqa: F401  (imported before timing starts)
    from torchvision.transforms import v2  # noqa: F401

    return {
        "pillow": PIL.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }


def make_loader(dataset: str, pipeline: str, root: str, workers: int, batch_size: int, seed: int):
    """Builds the dataset and the loader, as a torchvision user would."""
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets

    transforms = torchvision_transforms(pipeline)
    if dataset == "detection":
        ds = datasets.VOCDetection(root, year=YEAR, image_set="trainval", transforms=transforms)
        ds = datasets.wrap_dataset_for_transforms_v2(ds, target_keys=("boxes", "labels"))
        collate = detection_collate
    elif dataset == "segmentation":
        ds = datasets.VOCSegmentation(root, year=YEAR, image_set="trainval", transforms=transforms)
        ds = datasets.wrap_dataset_for_transforms_v2(ds)
        collate = None  # torch's default collate stacks images and masks
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate,
        generator=generator,
    )


def batch_images(batch) -> int:
    return len(batch[0])
