"""The two pipelines of the loader benchmark, written as a torchvision user writes them.

The same ``torchvision.transforms.v2`` objects go to torchvision's datasets and to conveyor's
(conveyor translates them to native ops), so both sides run exactly the user's code.
"""

from __future__ import annotations

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

PIPELINES = {
    "det512": "ToImage, Resize((512, 512)), RandomHorizontalFlip, ToDtype(float32, scale=True), Normalize",
    "rrc224": "ToImage, RandomResizedCrop(224), RandomHorizontalFlip, ToDtype(float32, scale=True), Normalize",
    "val224": "ToImage, Resize(256), CenterCrop(224), ToDtype(float32, scale=True), Normalize",
}
DATASETS = ("detection", "segmentation")


def torchvision_transforms(pipeline: str):
    """Builds the ``v2.Compose`` for ``pipeline`` ("det512", "rrc224" or "val224")."""
    import torch
    from torchvision.transforms import v2

    if pipeline == "det512":
        geometry = [v2.Resize((512, 512))]
    elif pipeline == "rrc224":
        geometry = [v2.RandomResizedCrop(224)]
    elif pipeline == "val224":  # the classic validation pipeline: no flip
        return v2.Compose(
            [
                v2.ToImage(),
                v2.Resize(256),
                v2.CenterCrop(224),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(MEAN, STD),
            ]
        )
    else:
        raise ValueError(f"unknown pipeline {pipeline!r}; expected one of {sorted(PIPELINES)}")
    return v2.Compose(
        [
            v2.ToImage(),
            *geometry,
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
