"""The planner: which transforms the engine runs, as typed engine ops, and where Python takes
over.

It recognises torchvision's v1 and v2 classes and conveyor's own (``conveyor.transforms``), and
splits a pipeline into the longest natively runnable prefix and a Python tail. Each translator
builds ``conveyor._core.Op`` objects, checked against the one op schema of the native core
(``conveyor._core.op_schema()``, defined in ``csrc/conveyor/ops/op_schema.cpp``); its docstring
says which settings run natively, and :func:`native_transforms_markdown` turns the translators
and the schema into the table of the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, cast

import torch
import torchvision.transforms as v1
from torchvision import tv_tensors
from torchvision.transforms import v2

from conveyor.loader.reference_transforms import (
    KNOWN_SOURCES,
    delegated_transforms,
    known_class_name,
    reference_compose_items,
)

_OWN_CLASSES_MODULE = "conveyor.transforms"

_DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.uint8: "uint8"}


def Op(name: str, **args: Any) -> Any:  # noqa: N802 (reads as the class it builds)
    """A native op checked against the schema (``ValueError`` for a bad name or argument)."""
    from conveyor import _core

    return _core.Op(name, **args)


class UnsupportedTransform(ValueError):
    """A transform (or one of its settings) the native engine does not run."""


def transform_name(transform: Any) -> str:
    """``"torchvision.transforms.v2.Resize"``-style name of a transform for messages."""
    cls = type(transform)
    module = cls.__module__
    for public in ("torchvision.transforms.v2", "torchvision.transforms", "conveyor.transforms"):
        if module.startswith(public + ".") or module == public:
            module = public
            break
    if getattr(transform, "__name__", None) == "<lambda>":
        return f"a lambda ({module})"
    return f"{module}.{cls.__qualname__}"


# --------------------------------------------------------------------------- settings checks


def _size(size: Any) -> Any:
    if isinstance(size, int):
        return size
    size = list(size)
    if len(size) == 1:
        return int(size[0])
    if len(size) == 2:
        return [int(size[0]), int(size[1])]
    raise UnsupportedTransform(f"size {size!r}")


# torchvision's InterpolationMode values the engine resamples images with (masks: nearest, or
# nearest-exact when that is the mode).
_NATIVE_INTERPOLATIONS = ("bilinear", "nearest", "nearest-exact", "bicubic")
# The PIL integer codes torchvision v1 still accepts (torchvision's _interpolation_modes_from_int).
_INTERPOLATION_CODES = {
    0: "nearest",
    2: "bilinear",
    3: "bicubic",
    1: "lanczos",
    4: "box",
    5: "hamming",
}


def _interpolation(transform: Any) -> str:
    """The transform's image interpolation as the engine's op argument (the InterpolationMode
    value); ``UnsupportedTransform`` naming the transform and the mode otherwise."""
    mode = getattr(transform, "interpolation", "bilinear")
    value = getattr(mode, "value", mode)
    if isinstance(value, int) and not isinstance(value, bool):
        value = _INTERPOLATION_CODES.get(value, value)
    if value not in _NATIVE_INTERPOLATIONS:
        raise UnsupportedTransform(
            f"{transform_name(transform)} with interpolation {value!r} "
            f"(natively: {', '.join(_NATIVE_INTERPOLATIONS)})"
        )
    return cast(str, value)


def _resampling(transform: Any) -> Dict[str, Any]:
    """antialias and interpolation arguments of a resizing op (interpolation only when not the
    default bilinear, so that descriptors of bilinear pipelines stay as they were)."""
    interpolation = _interpolation(transform)
    args: Dict[str, Any] = {"antialias": _antialias(transform)}
    if interpolation != "bilinear":
        args["interpolation"] = interpolation
    return args


def _antialias(transform: Any) -> bool:
    antialias = getattr(transform, "antialias", True)
    return True if antialias in (None, "warn") else bool(antialias)


def _fill_value(transform: Any, value: Any) -> Any:
    if value is None:
        return 0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)) and len(value) in (1, 3):
        return [float(v) for v in value]
    raise UnsupportedTransform(
        f"{transform_name(transform)} with fill {value!r} "
        "(a number or 3 numbers run natively, also per type in a dict)"
    )


def _fills(transform: Any) -> Dict[str, Any]:
    """``fill`` (images) and ``mask_fill`` of a transform, resolved as torchvision's
    ``_get_fill`` does for each type: the exact type's entry, else ``"others"``, else 0."""
    fill = getattr(transform, "fill", 0)
    if not isinstance(fill, dict):
        value = _fill_value(transform, fill)
        if isinstance(value, list):  # an RGB fill: torchvision cannot pad masks with it either
            return {"fill": value}
        return {"fill": value, "mask_fill": value}

    def pick(kind: type) -> Any:
        return fill[kind] if kind in fill else fill.get("others")

    image, mask = _fill_value(transform, pick(tv_tensors.Image)), pick(tv_tensors.Mask)
    mask = _fill_value(transform, mask)
    if isinstance(mask, list):
        mask = mask[0] if len(mask) == 1 else None
    if mask is None:
        raise UnsupportedTransform(
            f"{transform_name(transform)} with mask fill {fill!r} (one number runs natively)"
        )
    return {"fill": image, "mask_fill": mask}


def _padding_mode(transform: Any) -> str:
    mode = getattr(transform, "padding_mode", "constant")
    if mode not in ("constant", "edge", "reflect", "symmetric"):
        raise UnsupportedTransform(f"{transform_name(transform)} with padding_mode {mode!r}")
    return mode


def _padding(padding: Any) -> Any:
    if padding is None:
        return None
    if isinstance(padding, int):
        return padding
    return [int(p) for p in padding]


def _per_type_dtype(dtype: Dict[Any, Any], kind: type) -> Optional[torch.dtype]:
    # v2.ToDtype: the entry of the exact type, else the "others" catch-all (None: unchanged)
    return dtype[kind] if kind in dtype else dtype.get("others")


def _image_dtype(transform: Any) -> Optional[str]:
    """The image dtype a ToDtype converts to (engine name), or None when images stay as they are."""
    dtype = transform.dtype
    if isinstance(dtype, dict):
        # images and masks convert natively; every other type (boxes, "others") must stay as is
        if any(
            value is not None
            for kind, value in dtype.items()
            if kind not in (tv_tensors.Image, tv_tensors.Mask)
        ):
            raise UnsupportedTransform(
                f"{transform_name(transform)} with per-type dtypes "
                f"{dtype!r} (only image and mask dtypes run natively)"
            )
        dtype = _per_type_dtype(dtype, tv_tensors.Image)
        if dtype is None:
            return None
    if dtype not in _DTYPES:
        raise UnsupportedTransform(
            f"{transform_name(transform)} to {dtype} (float32, float16 and uint8 run natively)"
        )
    return _DTYPES[dtype]


def mask_dtype(transform: Any) -> Optional[torch.dtype]:
    """The dtype a ``v2.ToDtype`` gives ``tv_tensors.Mask`` targets (None: left unchanged).

    A plain dtype converts only images (torchvision's rule); a per-type dict converts masks with
    its ``tv_tensors.Mask`` entry, else its ``"others"`` entry, never scaling them.

    Args:
        transform: A recognised transform.

    Returns:
        The masks' new dtype, or None.
    """
    dtype = getattr(transform, "dtype", None)
    if _recognised_class(transform) is not v2.ToDtype or not isinstance(dtype, dict):
        return None
    return _per_type_dtype(dtype, tv_tensors.Mask)


# ----------------------------------------------------------------------------- descriptors


def _resize(t: Any) -> List[Any]:
    """size (int or [h, w]), max_size, antialias; interpolation bilinear, nearest,
    nearest-exact or bicubic."""
    resampling = _resampling(t)
    if t.size is None:
        raise UnsupportedTransform(f"{transform_name(t)} with size=None")
    return [Op("resize", size=_size(t.size), max_size=t.max_size, **resampling)]


def _random_resized_crop(t: Any) -> List[Any]:
    """size, scale, ratio, antialias; interpolation bilinear, nearest, nearest-exact or
    bicubic."""
    return [
        Op(
            "random_resized_crop",
            size=_size(t.size),
            scale=[float(s) for s in t.scale],
            ratio=[float(r) for r in t.ratio],
            **_resampling(t),
        )
    ]


def _random_crop(t: Any) -> List[Any]:
    """size, padding, pad_if_needed, fill (number, RGB or per-type dict), padding_mode."""
    return [
        Op(
            "random_crop",
            size=_size(t.size),
            padding=_padding(t.padding),
            pad_if_needed=bool(t.pad_if_needed),
            padding_mode=_padding_mode(t),
            **_fills(t),
        )
    ]


def _center_crop(t: Any) -> List[Any]:
    """size; pads with 0 where the crop is larger than the image."""
    return [Op("center_crop", size=_size(t.size))]


def _pad(t: Any) -> List[Any]:
    """padding, fill (number, RGB or per-type dict), padding_mode."""
    return [Op("pad", padding=_padding(t.padding), padding_mode=_padding_mode(t), **_fills(t))]


def _hflip(t: Any) -> List[Any]:
    """p."""
    return [Op("hflip", p=float(t.p))]


def _vflip(t: Any) -> List[Any]:
    """p."""
    return [Op("vflip", p=float(t.p))]


def _random_resize(t: Any) -> List[Any]:
    """min_size, max_size, antialias; interpolation bilinear, nearest, nearest-exact or
    bicubic."""
    return [
        Op(
            "random_resize",
            min_size=int(t.min_size),
            max_size=int(t.max_size),
            **_resampling(t),
        )
    ]


def _random_shortest_size(t: Any) -> List[Any]:
    """min_size (int or list), max_size, antialias; interpolation bilinear, nearest,
    nearest-exact or bicubic."""
    return [
        Op(
            "random_shortest_size",
            min_size=[int(s) for s in t.min_size],
            max_size=t.max_size,
            **_resampling(t),
        )
    ]


def _scale_jitter(t: Any) -> List[Any]:
    """target_size, scale_range, antialias; interpolation bilinear, nearest, nearest-exact or
    bicubic."""
    return [
        Op(
            "scale_jitter",
            target_size=[int(s) for s in t.target_size],
            scale_range=[float(s) for s in t.scale_range],
            **_resampling(t),
        )
    ]


def _random_zoom_out(t: Any) -> List[Any]:
    """fill (number, RGB or per-type dict), side_range, p."""
    return [
        Op(
            "random_zoom_out",
            side_range=[float(s) for s in t.side_range],
            p=float(t.p),
            **_fills(t),
        )
    ]


def _random_iou_crop(t: Any) -> List[Any]:
    """min/max_scale, min/max_aspect_ratio, sampler_options, trials; needs boxes. Where
    torchvision would loop forever (no crop reaches the drawn IoU and no option >= 1 keeps
    the sample) the loader raises an error naming the sample, after 1000 rounds (at once
    without boxes)."""
    return [
        Op(
            "random_iou_crop",
            min_scale=float(t.min_scale),
            max_scale=float(t.max_scale),
            min_aspect_ratio=float(t.min_aspect_ratio),
            max_aspect_ratio=float(t.max_aspect_ratio),
            sampler_options=[float(o) for o in t.options],
            trials=int(t.trials),
        )
    ]


def _normalize(t: Any) -> List[Any]:
    """mean, std (fused into the final write)."""
    return [Op("normalize", mean=[float(m) for m in t.mean], std=[float(s) for s in t.std])]


def _to_dtype(t: Any) -> List[Any]:
    """float32/float16/uint8 images, scale; a per-type dict converts masks too."""
    dtype = _image_dtype(t)
    return [] if dtype is None else [Op("to_dtype", dtype=dtype, scale=bool(t.scale))]


def _convert_image_dtype(t: Any) -> List[Any]:
    """float32/float16/uint8 (scaled)."""
    return [Op("to_dtype", dtype=_image_dtype(t), scale=True)]


def _to_tensor(_t: Any) -> List[Any]:
    """Converts to a float32 tensor in [0, 1]."""
    return [Op("to_dtype", dtype="float32", scale=True)]


def _no_op(_t: Any) -> List[Any]:
    """Converts to a tensor (no engine op)."""
    return []


def _range(value: Any) -> Any:
    return None if value is None else [float(value[0]), float(value[1])]


def _color_jitter(t: Any) -> List[Any]:
    """brightness, contrast, saturation, hue (any values torchvision accepts), in its random
    order; uint8 images, before ToDtype."""
    return [
        Op(
            "color_jitter",
            brightness=_range(t.brightness),
            contrast=_range(t.contrast),
            saturation=_range(t.saturation),
            hue=_range(t.hue),
        )
    ]


def _photometric_distort(t: Any) -> List[Any]:
    """brightness, contrast, saturation, hue, p (each distortion and the channel permutation
    with probability p); uint8 images, before ToDtype."""
    return [
        Op(
            "photometric_distort",
            brightness=_range(t.brightness),
            contrast=_range(t.contrast),
            saturation=_range(t.saturation),
            hue=_range(t.hue),
            p=float(t.p),
        )
    ]


def _grayscale(t: Any) -> List[Any]:
    """num_output_channels=3 (1 channel does not run natively)."""
    if t.num_output_channels != 3:
        raise UnsupportedTransform(
            f"{transform_name(t)} with num_output_channels={t.num_output_channels} "
            "(only 3 runs natively)"
        )
    return [Op("grayscale")]


def _random_grayscale(t: Any) -> List[Any]:
    """p (three equal channels out)."""
    return [Op("random_grayscale", p=float(t.p))]


def _gaussian_blur(t: Any) -> List[Any]:
    """kernel_size, sigma (a range; one draw for both axes), reflect padding."""
    return [
        Op(
            "gaussian_blur",
            kernel_size=[int(k) for k in t.kernel_size],
            sigma=[float(t.sigma[0]), float(t.sigma[1])],
        )
    ]


def _random_autocontrast(t: Any) -> List[Any]:
    """p."""
    return [Op("random_autocontrast", p=float(t.p))]


def _random_equalize(t: Any) -> List[Any]:
    """p."""
    return [Op("random_equalize", p=float(t.p))]


def _random_channel_permutation(_t: Any) -> List[Any]:
    """Always (a uniformly random order of the 3 channels)."""
    return [Op("random_channel_permutation")]


def _random_erasing(t: Any) -> List[Any]:
    """p, scale, ratio, value (a number, 3 numbers or "random"); the last image op (after
    Normalize, as used)."""
    value = t.value
    if value is not None and len(value) not in (1, 3):
        raise UnsupportedTransform(f"{transform_name(t)} with value {value!r}")
    return [
        Op(
            "random_erasing",
            p=float(t.p),
            scale=[float(s) for s in t.scale],
            ratio=[float(r) for r in t.ratio],
            value=[0.0] if value is None else [float(v) for v in value],
            random_value=value is None,
        )
    ]


def _sanitize_bounding_boxes(t: Any) -> List[Any]:
    """min_size, min_area, the default labels_getter (drops the labels and difficult flags of
    the removed boxes)."""
    if t.labels_getter != "default":
        raise UnsupportedTransform(
            f"{transform_name(t)} with labels_getter={t.labels_getter!r} (only the default runs "
            "natively)"
        )
    return [Op("sanitize_bounding_boxes", min_size=float(t.min_size), min_area=float(t.min_area))]


def _convert_bounding_box_format(t: Any) -> List[Any]:
    """format XYXY, XYWH or CXCYWH (rotated formats do not run natively)."""
    name = getattr(t.format, "name", str(t.format))
    if name not in ("XYXY", "XYWH", "CXCYWH"):
        raise UnsupportedTransform(f"{transform_name(t)} to {name} (XYXY/XYWH/CXCYWH run natively)")
    return [Op("convert_bounding_box_format", format=name)]


def _clamp_bounding_boxes(t: Any) -> List[Any]:
    """Boxes clamped to the image (the engine's boxes are XYXY)."""
    if getattr(t, "clamping_mode", "auto") not in ("auto", "hard", "soft"):
        raise UnsupportedTransform(f"{transform_name(t)} with clamping_mode={t.clamping_mode!r}")
    return [Op("clamp_bounding_boxes")]


# transform class -> (descriptors, converts the image to a tensor)
_TRANSLATORS: Dict[type, Any] = {
    v2.ToImage: (_no_op, True),
    v1.PILToTensor: (_no_op, True),
    v2.PILToTensor: (_no_op, True),
    v1.ToTensor: (_to_tensor, True),
    v2.ToTensor: (_to_tensor, True),
    v2.ToPureTensor: (_no_op, False),
    v1.Resize: (_resize, False),
    v2.Resize: (_resize, False),
    v1.RandomResizedCrop: (_random_resized_crop, False),
    v2.RandomResizedCrop: (_random_resized_crop, False),
    v1.RandomCrop: (_random_crop, False),
    v2.RandomCrop: (_random_crop, False),
    v1.CenterCrop: (_center_crop, False),
    v2.CenterCrop: (_center_crop, False),
    v1.Pad: (_pad, False),
    v2.Pad: (_pad, False),
    v1.RandomHorizontalFlip: (_hflip, False),
    v2.RandomHorizontalFlip: (_hflip, False),
    v1.RandomVerticalFlip: (_vflip, False),
    v2.RandomVerticalFlip: (_vflip, False),
    v2.RandomResize: (_random_resize, False),
    v2.RandomShortestSize: (_random_shortest_size, False),
    v2.ScaleJitter: (_scale_jitter, False),
    v2.RandomZoomOut: (_random_zoom_out, False),
    v2.RandomIoUCrop: (_random_iou_crop, False),
    v1.Normalize: (_normalize, False),
    v2.Normalize: (_normalize, False),
    v2.ToDtype: (_to_dtype, False),
    v1.ConvertImageDtype: (_convert_image_dtype, False),
    v2.ConvertImageDtype: (_convert_image_dtype, False),
    v2.ColorJitter: (_color_jitter, False),
    v2.RandomPhotometricDistort: (_photometric_distort, False),
    v2.Grayscale: (_grayscale, False),
    v2.RandomGrayscale: (_random_grayscale, False),
    v2.GaussianBlur: (_gaussian_blur, False),
    v2.RandomAutocontrast: (_random_autocontrast, False),
    v2.RandomEqualize: (_random_equalize, False),
    v2.RandomChannelPermutation: (_random_channel_permutation, False),
    v2.RandomErasing: (_random_erasing, False),
    v2.SanitizeBoundingBoxes: (_sanitize_bounding_boxes, False),
    v2.ClampBoundingBoxes: (_clamp_bounding_boxes, False),
    v2.ConvertBoundingBoxFormat: (_convert_bounding_box_format, False),
}
_COMPOSE = (v1.Compose, v2.Compose)


def describe(transform: Any) -> List[Any]:
    """The engine ops of one recognised transform (not a Compose).

    Args:
        transform: A transform instance.

    Returns:
        Zero or more ``conveyor._core.Op`` (conversions such as ToImage need none).

    Raises:
        UnsupportedTransform: The class is not recognised or a setting has no native equivalent.
    """
    cls = _recognised_class(transform)
    entry = None if cls is None else _TRANSLATORS.get(cls)
    if entry is None:
        raise UnsupportedTransform(f"{transform_name(transform)} has no native equivalent")
    ops: List[Any] = entry[0](transform)
    return ops


def _recognised_class(transform: Any) -> Optional[type]:
    cls = type(transform)
    if cls in _TRANSLATORS:
        return cls
    if cls.__module__ == _OWN_CLASSES_MODULE:  # conveyor's own classes: translated as their v2 base
        return next((base for base in cls.__mro__[1:] if base in _TRANSLATORS), None)
    return None


def _flatten(transform: Any, joint: bool = False) -> List[Any]:
    if type(transform) in _COMPOSE or (
        type(transform).__module__ == _OWN_CLASSES_MODULE and isinstance(transform, _COMPOSE)
    ):
        return [leaf for inner in transform.transforms for leaf in _flatten(inner, joint)]
    return _flatten_delegating(transform, joint)


@dataclass
class NativePlan:
    """How a transform pipeline splits between the engine and Python.

    Attributes:
        ops: Engine ops (``conveyor._core.Op``) for the natively run prefix.
        tail: Transforms to call in Python, in order, on each sample the engine produced.
        blocker: Name of the first transform that could not run natively (None: all native).
        reason: Why it could not (for the warning).
        to_tensor: The native prefix converts the image to a tensor (ToImage/ToTensor/...);
            without it the dataset would return PIL images, which only Python can produce.
        mask_dtype: The dtype ``tv_tensors.Mask`` targets end with (a per-type ``ToDtype``);
            None leaves them uint8.
        box_format: The format of the boxes the engine returns (a ConvertBoundingBoxFormat).
        pil_mask: The pipeline moves a PIL mask as torchvision's segmentation reference does
            (its own transforms, see ``reference_transforms``): the engine moves the mask and
            the native prefix ends with it as an int64 ``[H, W]`` tensor.
        plain_tensors: The native prefix returns plain tensors, not ``tv_tensors`` (a
            ``v2.ToPureTensor``, or the segmentation reference's ``PILToTensor``).
    """

    ops: List[Any] = field(default_factory=list)
    tail: List[Callable[..., Any]] = field(default_factory=list)
    blocker: Optional[str] = None
    reason: str = ""
    to_tensor: bool = False
    mask_dtype: Optional[torch.dtype] = None
    box_format: str = "XYXY"
    pil_mask: bool = False
    plain_tensors: bool = False

    @property
    def fully_native(self) -> bool:
        """True when the engine runs everything."""
        return self.blocker is None and not self.tail


def _check_target_dtypes(transform: Any, target_types: Sequence[type]) -> None:
    # torchvision's ToDtype raises for a per-type dict with no entry for a target's type (and
    # no "others"); leaving it to Python reproduces that error
    dtype = getattr(transform, "dtype", None)
    if _recognised_class(transform) is not v2.ToDtype or not isinstance(dtype, dict):
        return
    for kind in target_types:
        if kind not in dtype and "others" not in dtype:
            raise UnsupportedTransform(
                f"{transform_name(transform)} with per-type dtypes "
                f"{dtype!r} has no entry for {kind.__name__} targets"
            )


def _check_order(
    leaf: Any, ops: List[Any], before: List[Any], target_types: Sequence[type]
) -> None:
    """Raises UnsupportedTransform where ``ops`` cannot follow the ops ``before`` natively."""
    if not ops:
        return
    category = ops[0].category
    if category in ("geometric", "photometric") and any(o.category == "value" for o in before):
        raise UnsupportedTransform(
            f"{transform_name(leaf)} after ToDtype/Normalize "
            "(the engine runs geometric and photometric ops on uint8 images)"
        )
    if category != "boxes" and any(o.name == "random_erasing" for o in before):
        raise UnsupportedTransform(
            f"{transform_name(leaf)} after RandomErasing (it runs natively as the last image op)"
        )
    if category == "geometric" and any(o.category == "boxes" for o in before):
        raise UnsupportedTransform(
            f"{transform_name(leaf)} after a box op (sanitize/clamp run after the geometric ops)"
        )
    if category == "geometric" and any(o.category == "photometric" for o in before):
        seen_geometric = any(o.category == "geometric" for o in before)
        photometric_after = seen_geometric and any(
            o.category == "photometric"
            for o in before[next(i for i, o in enumerate(before) if o.category == "geometric") :]
        )
        if photometric_after:
            raise UnsupportedTransform(
                f"{transform_name(leaf)} after a photometric op that follows geometric ones "
                "(photometric ops run natively before or after the geometric ones)"
            )
    if category == "boxes" and tv_tensors.BoundingBoxes not in target_types:
        raise UnsupportedTransform(
            f"{transform_name(leaf)} without bounding boxes moving with the image"
        )


def plan_transforms(
    transform: Optional[Callable[..., Any]],
    target_types: Sequence[type] = (),
    joint: bool = False,
    pil_mask: bool = False,
) -> NativePlan:
    """Split ``transform`` into the longest natively runnable prefix and a Python tail.

    The engine applies geometric ops on uint8 images and fuses dtype conversion and
    normalisation into its final write, so a geometric op after a ``ToDtype``/``Normalize``
    also ends the native prefix (running it natively would change the rounding).

    Args:
        transform: A transform, a (nested) Compose, or None.
        target_types: The ``tv_tensors`` types of the targets moving with the image (joint
            transforms), e.g. ``(tv_tensors.Mask,)``.
        joint: The transform is called as ``transform(image, target)`` (a dataset's
            ``transforms=``): presets and the references' ``Compose`` are seen through.
        pil_mask: The target is a PIL mask (``VOCSegmentation(target_format="pil")``): only the
            segmentation reference's own transforms move it natively (``_plan_pil_mask``).

    Returns:
        The ``NativePlan``.
    """
    plan = NativePlan()
    if transform is None:
        return plan
    leaves = _flatten(transform, joint)
    if pil_mask:
        return _plan_pil_mask(leaves)
    for position, leaf in enumerate(leaves):
        try:
            ops = describe(leaf)
            _check_target_dtypes(leaf, target_types)
            if tv_tensors.BoundingBoxes in target_types and any(
                o.args.get("padding_mode", "constant") != "constant" for o in ops
            ):
                raise UnsupportedTransform(
                    f"{transform_name(leaf)} with a non-constant padding_mode and bounding boxes"
                    " (torchvision refuses it)"
                )
            if any(o.name == "random_iou_crop" for o in ops) and (
                tv_tensors.BoundingBoxes not in target_types
            ):
                raise UnsupportedTransform(
                    f"{transform_name(leaf)} without bounding boxes (torchvision requires them)"
                )
            _check_order(leaf, ops, plan.ops, target_types)
        except UnsupportedTransform as why:
            plan.blocker, plan.reason = transform_name(leaf), str(why)
            plan.tail = leaves[position:]
            return plan
        plan.ops.extend(ops)
        # describe() succeeded, so the leaf's class is a recognised one
        plan.to_tensor = plan.to_tensor or _TRANSLATORS[cast(type, _recognised_class(leaf))][1]
        plan.mask_dtype = mask_dtype(leaf) or plan.mask_dtype
        plan.plain_tensors = plan.plain_tensors or _recognised_class(leaf) is v2.ToPureTensor
        for op in ops:
            if op.name == "convert_bounding_box_format":
                plan.box_format = op.to_dict()["format"]
    return plan


# ------------------------------------------------- presets and torchvision references' transforms


def _flatten_delegating(transform: Any, joint: bool) -> List[Any]:
    """A preset whose ``__call__`` only delegates to ``self.transforms`` is its transforms; a
    known version of the segmentation reference's ``Compose`` (joint only: it calls
    ``t(image, target)``) is its items; anything else is a leaf."""
    items = reference_compose_items(transform) if joint else None
    if items is not None:
        return [leaf for inner in items for leaf in _flatten(inner, joint)]
    inner = delegated_transforms(transform, joint)
    if inner is not None:
        return _flatten(inner, joint)
    return [transform]


def _int(leaf: Any, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise UnsupportedTransform(f"{transform_name(leaf)} with {name}={value!r}")
    return value


def _reference_ops(leaf: Any, tensor: bool) -> List[Any]:
    """On ``VOCSegmentation(target_format="pil")`` joint transforms, recognised by their exact
    source (known versions; presets whose ``__call__`` only returns ``self.transforms(...)``
    are seen through), with the reference's semantics: image resized bilinear with antialias
    (within one level of PIL's), mask with PIL's NEAREST, padding right/bottom with 0 / 255,
    int64 ``[H, W]`` masks."""
    # the engine ops of one leaf; ``tensor``: after the reference's PILToTensor
    name = known_class_name(leaf)
    if name is None:
        raise UnsupportedTransform(
            f"{transform_name(leaf)} on a PIL mask: only known versions of torchvision's "
            "segmentation reference transforms move a PIL mask natively (v2 transforms treat it "
            'as a second image; target_format="mask" gives a tv_tensors.Mask)'
        )
    attrs = vars(leaf)
    if tensor != (name in ("ToDtype", "Normalize")):
        where = "after" if tensor else "before"
        raise UnsupportedTransform(f"{transform_name(leaf)} {where} PILToTensor")
    if name == "RandomResize":  # random.randint(min, max): both ends included
        low = _int(leaf, "min_size", attrs.get("min_size"))
        high = _int(leaf, "max_size", attrs.get("max_size"))
        if high < low:
            raise UnsupportedTransform(f"{transform_name(leaf)} with max_size < min_size")
        return [
            Op(
                "random_resize",
                min_size=low,
                max_size=high + 1,
                antialias=True,
                mask_interpolation="pil_nearest",
            )
        ]
    if name == "RandomHorizontalFlip":
        p = attrs.get("flip_prob")
        if not isinstance(p, (int, float)) or isinstance(p, bool):
            raise UnsupportedTransform(f"{transform_name(leaf)} with flip_prob={p!r}")
        return [Op("hflip", p=min(max(float(p), 0.0), 1.0))]  # random.random() < p
    if name == "RandomCrop":  # pad_if_smaller right/bottom, then T.RandomCrop.get_params
        size = _int(leaf, "size", attrs.get("size"))
        return [
            Op("pad_if_smaller", size=size, fill=0, mask_fill=255),
            Op("random_crop", size=size),
        ]
    if name == "PILToTensor":
        return []
    if name == "ToDtype":
        if attrs.get("dtype") is not torch.float32 or not isinstance(attrs.get("scale"), bool):
            raise UnsupportedTransform(
                f"{transform_name(leaf)} to {attrs.get('dtype')} (float32 runs natively)"
            )
        return [Op("to_dtype", dtype="float32", scale=attrs["scale"])]
    mean, std = attrs.get("mean"), attrs.get("std")  # Normalize
    if not all(isinstance(v, (list, tuple)) and len(v) == 3 for v in (mean, std)):
        raise UnsupportedTransform(f"{transform_name(leaf)} with mean {mean!r}, std {std!r}")
    return [Op("normalize", mean=[float(m) for m in mean], std=[float(v) for v in std])]


def _plan_pil_mask(leaves: List[Any]) -> NativePlan:
    """The plan of joint transforms on ``(PIL image, PIL mask)``: the reference's transforms
    natively up to the first other one; the prefix must include its ``PILToTensor`` (the mask
    is then an int64 ``[H, W]`` tensor, as the reference makes it)."""
    plan = NativePlan(pil_mask=True, mask_dtype=torch.int64, plain_tensors=True)
    for position, leaf in enumerate(leaves):
        try:
            ops = _reference_ops(leaf, plan.to_tensor)
            _check_order(leaf, ops, plan.ops, (tv_tensors.Mask,))
        except UnsupportedTransform as why:
            plan.blocker, plan.reason = transform_name(leaf), str(why)
            plan.tail = leaves[position:]
            return plan
        plan.ops.extend(ops)
        plan.to_tensor = plan.to_tensor or known_class_name(leaf) == "PILToTensor"
    return plan


# ----------------------------------------------------------------------------- documentation


def native_transforms_markdown() -> str:
    """The README's tables of natively run transforms and of the engine's ops, generated from
    the planner's translators (their docstrings name the settings) and the native op schema.

    ``python -m conveyor.loader.planner`` prints it; a test keeps the README equal to it.
    """
    from conveyor import _core

    by_translator: Dict[Any, List[str]] = {}
    for cls, (translate, _) in _TRANSLATORS.items():
        name = f"{cls.__module__}.{cls.__name__}"
        for public in ("torchvision.transforms.v2", "torchvision.transforms"):
            if cls.__module__.startswith(public):
                name = f"{'v2' if public.endswith('v2') else 'v1'}.{cls.__name__}"
                break
        by_translator.setdefault(translate, []).append(name)
    lines = [
        "| torchvision transform | runs natively with |",
        "|---|---|",
    ]
    for translate, names in by_translator.items():
        doc = " ".join((translate.__doc__ or "").split())
        lines.append(f"| {', '.join(f'`{n}`' for n in names)} | {doc} |")
    known = ", ".join(f"`{n}`" for n in KNOWN_SOURCES if n != "pad_if_smaller")
    doc = " ".join((_reference_ops.__doc__ or "").split())
    lines.append(f"| torchvision's `references/segmentation/transforms.py`: {known} | {doc} |")
    lines += ["", "| engine op | category | arguments (default) |", "|---|---|---|"]
    for op in _core.op_schema():
        args = ", ".join(
            f"`{a['name']}`" + ("" if a["required"] else f" ({a['default']})") for a in op["args"]
        )
        lines.append(f"| `{op['name']}` | {op['category']} | {args} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(native_transforms_markdown(), end="")
