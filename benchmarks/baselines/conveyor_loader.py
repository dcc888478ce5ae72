"""conveyor: ``conveyor.DataLoader`` (native threads) + conveyor's VOC datasets.

The user code is torchvision's with two imports changed: the same v2 transforms, the same
dataset arguments, ``target_format="boxes"`` and ``detection_collate`` for detection,
``target_format="mask"`` for segmentation (the typed items that torch's column gets from
``wrap_dataset_for_transforms_v2``; torch's default collate in both).
Warnings the loader raises (e.g. a transform that forced the slow Python path) are recorded in
the result by run_one.py, so a fast-path miss is visible in the table rather than hidden.
"""

from __future__ import annotations

from harness import Unavailable
from pipelines import torchvision_transforms

YEAR = "2012"


def describe() -> dict:
    from torchvision.transforms import v2  # noqa: F401  (imported before timing starts)

    import conveyor

    try:
        from conveyor import DataLoader  # noqa: F401
        from conveyor.datasets import VOCDetection  # noqa: F401
    except Exception as exc:
        raise Unavailable(f"conveyor.DataLoader / conveyor.datasets not importable: {exc}") from exc

    info = {"conveyor": conveyor.__version__, "imported_from": conveyor.__file__}
    try:
        info["build"] = conveyor.build_info()
    except Exception as exc:  # the native module may not be built
        info["build"] = f"unavailable: {exc}"
    return info


def make_loader(dataset: str, pipeline: str, root: str, workers: int, batch_size: int, seed: int):
    """Builds conveyor's dataset and loader; raises Unavailable when a piece is missing."""
    try:
        from conveyor import DataLoader
        from conveyor.datasets import VOCDetection, VOCSegmentation
    except Exception as exc:
        raise Unavailable(f"conveyor.DataLoader / conveyor.datasets not importable: {exc}") from exc
    transforms = torchvision_transforms(pipeline)
    if dataset == "detection":
        try:
            from conveyor.collate import detection_collate
        except Exception as exc:
            raise Unavailable(f"conveyor.collate.detection_collate not importable: {exc}") from exc
        ds = VOCDetection(
            root, year=YEAR, image_set="trainval", transforms=transforms, target_format="boxes"
        )
        collate = detection_collate
    elif dataset == "segmentation":
        ds = VOCSegmentation(
            root, year=YEAR, image_set="trainval", transforms=transforms, target_format="mask"
        )
        collate = None  # torch's default collate stacks images and masks, as in torch's column
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    kwargs = {"collate_fn": collate} if collate is not None else {}
    return DataLoader(
        ds, batch_size=batch_size, shuffle=True, num_workers=workers, seed=seed, **kwargs
    )


def loader_info(loader) -> dict:
    """Which path conveyor ran ("native": the whole pipeline in the engine) and what it skipped."""
    stats = loader.stats
    return {
        "path": stats.path,
        "samples_skipped": stats.total_samples_skipped,
        "stats_images_per_second": stats.images_per_second,
    }


def batch_images(batch) -> int:
    return len(batch[0])
