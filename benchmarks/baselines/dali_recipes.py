"""DALI on the CPU (``device_id=None``) for bench_recipes.py's recipes, where DALI has the ops.

Written as DALI's own examples are: ``fn.readers.file`` + ``fn.decoders.image`` + DALI's
operators, each batch copied out as numpy (one array when the recipe fixes the size, else a
list of arrays, as the detection collate gives). DALI has no VOC XML reader, so these runs read
and transform images only: no boxes, no labels (the box ops of a recipe are left out and
named). ``LACKS`` says, per recipe, what DALI cannot do or does differently; a recipe whose
core ops DALI lacks on the CPU is not measured (``Unavailable`` with the reason).
"""

from __future__ import annotations

import math

from dali_cpu import _Epochs, _image_files, describe
from harness import Unavailable

__all__ = ["LACKS", "MEASURED", "describe", "make_loader"]

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# What DALI (CPU) lacks per recipe. "not measured" recipes raise Unavailable with this text.
LACKS = {
    "ssd": "not measured: RandomIoUCrop and SanitizeBoundingBoxes need the boxes, and DALI has "
    "no VOC XML reader (fn.random_bbox_crop takes boxes from a reader); RandomZoomOut's "
    "fn.paste is GPU-only; RandomPhotometricDistort's random channel permutation and per-"
    "adjustment coin flips have no single op",
    "hflip": "measured images only: no VOC boxes to flip (fn.bb_flip needs a box reader), so no "
    "SanitizeBoundingBoxes",
    "scale_jitter": "measured images only (no boxes, no SanitizeBoundingBoxes); approximations: "
    "fn.color_twist applies brightness, contrast, saturation, hue in one fixed order (torchvision "
    "draws a random order) and its contrast pivots on mid-gray, not the image's mean luma; "
    "RandomCrop(pad_if_needed) is fn.crop with out_of_bounds_policy='pad' and a uniform anchor "
    "(torchvision pads both sides equally, then draws the crop)",
    "segmentation": "not measured: DALI's image decoder expands palette PNGs to colours and "
    "cannot return the class indices VOC masks store",
    "reference": "not measured: the detection reference's GroupedBatchSampler needs each "
    "image's aspect ratio from the VOC XML, and DALI's readers take no batch sampler (its "
    "per-image work is hflip's)",
    "issue4": "measured images only (the recipe has no box ops): fn.resize (antialias) + "
    "fn.crop_mirror_normalize",
}
MEASURED = ("hflip", "scale_jitter", "issue4")


def make_loader(recipe: str, root: str, workers: int, batch_size: int, seed: int):
    """The DALI CPU pipeline of a recipe, built; Unavailable for those DALI cannot run."""
    try:
        from nvidia.dali import fn, pipeline_def, types
        from nvidia.dali import math as dmath
    except Exception as exc:
        raise Unavailable(f"nvidia-dali not importable: {exc}") from exc
    if recipe not in MEASURED:
        raise Unavailable(LACKS.get(recipe, f"no DALI pipeline for recipe {recipe!r}"))
    files = _image_files(root)

    def normalize(images, mirror, scale_only=False):
        mean = [0.0, 0.0, 0.0] if scale_only else [m * 255 for m in MEAN]
        std = [255.0] * 3 if scale_only else [s * 255 for s in STD]
        return fn.crop_mirror_normalize(
            images, dtype=types.FLOAT, output_layout="CHW", mean=mean, std=std, mirror=mirror
        )

    @pipeline_def(batch_size=batch_size, num_threads=workers, device_id=None, seed=seed)
    def recipe_pipeline():
        jpegs, _ = fn.readers.file(files=files, random_shuffle=True, name="reader")
        images = fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)
        flip = fn.random.coin_flip(probability=0.5)
        if recipe == "issue4":
            images = fn.resize(images, resize_x=512, resize_y=512, antialias=True)
            return normalize(images, flip)
        if recipe == "hflip":
            return normalize(images, flip, scale_only=True)
        # scale_jitter: ScaleJitter((512, 512)), RandomCrop(512, pad_if_needed), HFlip,
        # ColorJitter(0.4, 0.4, 0.4, 0.1), ToDtype, Normalize
        shape = fn.peek_image_shape(jpegs)
        height = fn.cast(shape[0], dtype=types.FLOAT)
        width = fn.cast(shape[1], dtype=types.FLOAT)
        scale = dmath.min(512.0 / height, 512.0 / width) * fn.random.uniform(range=[0.1, 2.0])
        images = fn.resize(
            images, resize_x=dmath.floor(width * scale), resize_y=dmath.floor(height * scale)
        )
        images = fn.crop(
            images,
            crop=(512, 512),
            crop_pos_x=fn.random.uniform(range=[0.0, 1.0]),
            crop_pos_y=fn.random.uniform(range=[0.0, 1.0]),
            out_of_bounds_policy="pad",
            fill_values=0,
        )
        images = fn.color_twist(
            images,
            brightness=fn.random.uniform(range=[0.6, 1.4]),
            contrast=fn.random.uniform(range=[0.6, 1.4]),
            saturation=fn.random.uniform(range=[0.6, 1.4]),
            hue=fn.random.uniform(range=[-36.0, 36.0]),  # degrees: 0.1 of the hue circle
        )
        return normalize(images, flip)

    pipe = recipe_pipeline()
    pipe.build()
    return _Epochs(pipe, math.ceil(len(files) / batch_size), stacked=recipe != "hflip")


def batch_images(batch) -> int:
    return len(batch)
