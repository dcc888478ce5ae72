"""Baseline: NVIDIA DALI pipelines on the CPU (``device_id=None``, no GPU needed).

Written the way DALI's own examples do it: ``fn.readers.file`` + ``fn.decoders.image`` (or
``fn.decoders.image_random_crop``, DALI's region-of-interest decode for RandomResizedCrop) +
``fn.resize`` + ``fn.crop_mirror_normalize`` (flip, normalize and CHW float32 in one op).
Each batch is copied out as one numpy array, as a training loop would receive it.

Scope, stated in the results: DALI has no VOC XML reader, so the detection runs read and
transform images only (no boxes); segmentation is not run, because DALI's image decoder
expands palette PNGs to colours and cannot return the class indices VOC masks store.
"""

from __future__ import annotations

import math
from pathlib import Path

from harness import Unavailable
from pipelines import MEAN, STD

YEAR = "2012"


def describe() -> dict:
    import nvidia.dali as dali

    return {"dali": dali.__version__}


def _image_files(root: str) -> list[str]:
    voc = Path(root) / "VOCdevkit" / f"VOC{YEAR}"
    ids = (voc / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    return [str(voc / "JPEGImages" / f"{i}.jpg") for i in ids]


class _Epochs:
    """Iterating yields one epoch of batches (the reader itself wraps around forever)."""

    def __init__(self, pipe, batches_per_epoch: int, stacked: bool = True):
        self.pipe = pipe
        self.batches_per_epoch = batches_per_epoch
        self.stacked = stacked  # one array; else a list of arrays (variable sizes)

    def __iter__(self):
        for _ in range(self.batches_per_epoch):
            (images,) = self.pipe.run()
            if self.stacked:
                yield images.as_array()
            else:
                yield [images.at(i) for i in range(len(images))]


def make_loader(dataset: str, pipeline: str, root: str, workers: int, batch_size: int, seed: int):
    """Builds and builds-in the DALI CPU pipeline; raises Unavailable for segmentation."""
    try:
        from nvidia.dali import fn, pipeline_def, types
    except Exception as exc:
        raise Unavailable(f"nvidia-dali not importable: {exc}") from exc
    if dataset != "detection":
        raise Unavailable("DALI's decoder cannot return the palette indices of VOC masks")
    files = _image_files(root)

    @pipeline_def(batch_size=batch_size, num_threads=workers, device_id=None, seed=seed)
    def voc_pipeline():
        jpegs, _ = fn.readers.file(files=files, random_shuffle=True, name="reader")
        if pipeline == "det512":
            images = fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)
            images = fn.resize(images, resize_x=512, resize_y=512, antialias=True)
        elif pipeline == "rrc224":
            images = fn.decoders.image_random_crop(
                jpegs,
                device="cpu",
                output_type=types.RGB,
                random_area=[0.08, 1.0],
                random_aspect_ratio=[3 / 4, 4 / 3],
            )
            images = fn.resize(images, resize_x=224, resize_y=224, antialias=True)
        else:
            raise ValueError(f"unknown pipeline {pipeline!r}")
        return fn.crop_mirror_normalize(
            images,
            dtype=types.FLOAT,
            output_layout="CHW",
            mean=[m * 255 for m in MEAN],
            std=[s * 255 for s in STD],
            mirror=fn.random.coin_flip(probability=0.5),
        )

    pipe = voc_pipeline()
    pipe.build()
    return _Epochs(pipe, math.ceil(len(files) / batch_size))


def batch_images(batch) -> int:
    return len(batch)
