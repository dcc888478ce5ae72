"""Baseline: Meta's SPDL (FFmpeg decode + filter graphs in a thread pipeline, no GIL held).

Written as SPDL's image examples do: ``spdl.pipeline.PipelineBuilder`` with a source of
shuffled paths, a decode stage of ``workers`` concurrent tasks (``demux_image`` +
``decode_packets`` with an FFmpeg filter doing crop/scale/flip), ``aggregate(batch_size)``, then
``convert_frames`` into one uint8 NHWC buffer normalised to float32 NCHW with numpy (SPDL has no
normalize op). Images only: SPDL has no VOC XML or palette-mask reader, so no segmentation.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
from harness import Unavailable
from pipelines import MEAN, STD

YEAR = "2012"
_MEAN = np.array(MEAN, dtype=np.float32).reshape(1, 3, 1, 1) * 255
_INV_STD = 1.0 / (np.array(STD, dtype=np.float32).reshape(1, 3, 1, 1) * 255)


def describe() -> dict:
    import spdl
    import spdl.io  # noqa: F401  (imported before timing starts)
    import spdl.pipeline  # noqa: F401

    return {"spdl": getattr(spdl, "__version__", "?")}


def _rrc_box(rng: random.Random, width: int, height: int) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params (scale 0.08-1, ratio 3/4-4/3)."""
    area = width * height
    log_ratio = (math.log(3 / 4), math.log(4 / 3))
    for _ in range(10):
        target = area * rng.uniform(0.08, 1.0)
        ratio = math.exp(rng.uniform(*log_ratio))
        w, h = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, width - w), rng.randint(0, height - h), w, h
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side, side


class _Epochs:
    def __init__(self, files, pipeline: str, workers: int, batch_size: int, seed: int):
        self.files, self.pipeline, self.workers = files, pipeline, workers
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0

    def _decode(self, item):
        import spdl.io

        path, draw = item
        rng = random.Random(draw)
        packets = spdl.io.demux_image(path)
        flip = ",hflip" if rng.random() < 0.5 else ""
        if self.pipeline == "det512":
            chain = "scale=512:512"
        else:
            x, y, w, h = _rrc_box(rng, packets.width, packets.height)
            chain = f"crop={w}:{h}:{x}:{y},scale=224:224"
        return spdl.io.decode_packets(packets, filter_desc=f"{chain}{flip},format=rgb24")

    @staticmethod
    def _to_batch(frames):
        import spdl.io

        hwc = spdl.io.to_numpy(spdl.io.convert_frames(frames))
        return (hwc.transpose(0, 3, 1, 2).astype(np.float32) - _MEAN) * _INV_STD

    def __iter__(self):
        from spdl.pipeline import PipelineBuilder

        rng = random.Random(self.seed * 1000003 + self.epoch)
        self.epoch += 1
        order = list(self.files)
        rng.shuffle(order)
        items = [(path, rng.getrandbits(32)) for path in order]
        pipe = (
            PipelineBuilder()
            .add_source(items)
            .pipe(self._decode, concurrency=self.workers)
            .aggregate(self.batch_size)
            .pipe(self._to_batch)
            .add_sink(2)
            .build(num_threads=self.workers)
        )
        with pipe.auto_stop():
            yield from pipe


def make_loader(dataset: str, pipeline: str, root: str, workers: int, batch_size: int, seed: int):
    try:
        import spdl.io  # noqa: F401
        import spdl.pipeline  # noqa: F401
    except Exception as exc:
        raise Unavailable(f"spdl not importable: {exc}") from exc
    if dataset != "detection":
        raise Unavailable("SPDL has no reader for the palette-index PNG masks of VOC")
    if pipeline not in ("det512", "rrc224"):
        raise ValueError(f"unknown pipeline {pipeline!r}")
    voc = Path(root) / "VOCdevkit" / f"VOC{YEAR}"
    ids = (voc / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    return _Epochs(
        [str(voc / "JPEGImages" / f"{i}.jpg") for i in ids], pipeline, workers, batch_size, seed
    )


def batch_images(batch) -> int:
    return len(batch)
