"""The detection/segmentation recipe geometry (RandomResize, RandomShortestSize, ScaleJitter,
RandomZoomOut, RandomIoUCrop, RandomVerticalFlip, per-type fills) against torchvision v2.

Two halves: (1) with the parameters the engine drew (``_core.plan_steps``), torchvision's own
kernels give the same image (uint8 within 1), boxes (1e-4) and mask (exactly), on generated and
real VOC images; (2) the engine's parameter draws follow torchvision's ``make_params``
distributions: a chi-square test at fixed seeds on both sides (deterministic, so it cannot flake;
the threshold is generous, a wrong distribution fails it by orders of magnitude).
"""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from test_ops import assert_close_uint8, chw, photo
from torchvision import tv_tensors
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from conveyor import _core
from conveyor.loader.engine import run_pipeline
from conveyor.loader.planner import plan_transforms


def boxes_for(height, width, count=6, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, width, (count, 2)), axis=1)
    y = np.sort(rng.uniform(0, height, (count, 2)), axis=1)
    boxes = np.stack([x[:, 0], y[:, 0], x[:, 1] + 1, y[:, 1] + 1], axis=1)
    boxes[:, 2] = np.minimum(boxes[:, 2], width)
    boxes[:, 3] = np.minimum(boxes[:, 3], height)
    return boxes.astype(np.float32)


def mask_for(height, width, seed=0):
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 21, (height, width)).astype(np.uint8)
    mask[: height // 5] = 255
    return mask


def replay(steps, image, boxes, mask, fill, mask_fill, antialias=True, interpolation="bilinear"):
    """torchvision's kernels applied with the engine's drawn steps (masks: nearest, or
    nearest-exact when that is the mode, as torchvision's resize_mask)."""
    h, w = image.shape[:2]
    img = tv_tensors.Image(chw(image))
    bb = tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format="XYXY", canvas_size=(h, w))
    mk = tv_tensors.Mask(torch.from_numpy(mask)[None])
    for step in steps:
        kind = step["kind"]
        if kind == "crop":
            cx = 0.5 * (bb[:, 0] + bb[:, 2])
            cy = 0.5 * (bb[:, 1] + bb[:, 3])
            left, top = step["x"], step["y"]
            right, bottom = left + step["width"], top + step["height"]
            within = (left < cx) & (cx < right) & (top < cy) & (cy < bottom)
            args = dict(top=top, left=left, height=step["height"], width=step["width"])
            img, bb, mk = F.crop(img, **args), F.crop(bb, **args), F.crop(mk, **args)
            if step["zero_boxes_outside"]:
                bb[~within] = 0
        elif kind == "pad":
            padding = list(step["padding"])
            img = F.pad(img, padding, fill=fill)
            bb = F.pad(bb, padding)
            mk = F.pad(mk, padding, fill=mask_fill)
        elif kind == "resize":
            size = [step["height"], step["width"]]
            mode = v2.InterpolationMode(interpolation)
            img = F.resize(img, size, interpolation=mode, antialias=antialias)
            bb = F.resize(bb, size)
            mk = F.resize(mk, size, interpolation=mode)  # torchvision: nearest(-exact)
        elif kind == "hflip":
            img, bb, mk = F.horizontal_flip(img), F.horizontal_flip(bb), F.horizontal_flip(mk)
        elif kind == "vflip":
            img, bb, mk = F.vertical_flip(img), F.vertical_flip(bb), F.vertical_flip(mk)
    bb = bb.as_subclass(torch.Tensor)
    kept = (bb[:, 2] > bb[:, 0]) & (bb[:, 3] > bb[:, 1])  # the engine drops empty boxes
    return img.numpy(), bb[kept].numpy(), kept.numpy(), mk[0].numpy()


RECIPE_OPS = {
    "random_resize": [_core.Op("random_resize", min_size=26, max_size=104)],
    "random_shortest_size": [_core.Op("random_shortest_size", min_size=[48, 64, 80], max_size=100)],
    "scale_jitter": [_core.Op("scale_jitter", target_size=[64, 64])],
    "scale_jitter_aliased": [
        _core.Op("scale_jitter", target_size=[64, 64], scale_range=[0.3, 0.6], antialias=False)
    ],
    "zoom_out": [_core.Op("random_zoom_out", fill=[124, 116, 104], mask_fill=255, p=1.0)],
    "iou_crop": [_core.Op("random_iou_crop")],
    "vflip": [_core.Op("vflip", p=1.0)],
    "ssd": [
        _core.Op("random_zoom_out", fill=[124, 116, 104], mask_fill=0, p=0.5),
        _core.Op("random_iou_crop"),
        _core.Op("hflip", p=0.5),
        _core.Op("resize", size=[30, 30]),
    ],
    "segmentation": [
        _core.Op("random_resize", min_size=26, max_size=104),
        _core.Op("hflip", p=0.5),
        _core.Op("random_crop", size=[48, 48], pad_if_needed=True, fill=0, mask_fill=255),
    ],
    "scale_jitter_crop": [
        _core.Op("scale_jitter", target_size=[64, 64], scale_range=[0.1, 2.0]),
        _core.Op("random_crop", size=[64, 64], pad_if_needed=True, fill=0, mask_fill=255),
        _core.Op("vflip", p=0.5),
    ],
}


RESIZING_OPS = {
    "resize",
    "random_resized_crop",
    "random_resize",
    "random_shortest_size",
    "scale_jitter",
}


def fills(ops):
    fill, mask_fill = 0, 0
    for op in ops:
        if "fill" in op.args:
            fill, mask_fill = op.args["fill"], op.args.get("mask_fill", 0)
    return fill, mask_fill


def check_against_torchvision(ops, image, boxes, mask, index):
    h, w = image.shape[:2]
    steps = _core.plan_steps(ops, w, h, boxes, 3, 1, index)
    out, out_boxes, _, out_mask = run_pipeline(
        ops,
        image,
        boxes=boxes,
        labels=np.arange(len(boxes)),
        mask=mask,
        seed=3,
        epoch=1,
        index=index,
    )
    antialias = all(op.args.get("antialias", True) for op in ops)
    modes = {op.args.get("interpolation", "bilinear") for op in ops if op.name in RESIZING_OPS}
    assert len(modes) <= 1, "replay applies one interpolation to every resize"
    interpolation = modes.pop() if modes else "bilinear"
    fill, mask_fill = fills(ops)
    ref, ref_boxes, kept, ref_mask = replay(
        steps, image, boxes, mask, fill, mask_fill, antialias, interpolation
    )
    assert_close_uint8(out, ref)
    np.testing.assert_array_equal(out_mask, ref_mask)
    np.testing.assert_allclose(out_boxes, ref_boxes, atol=1e-4)
    return steps


@pytest.mark.parametrize("name", sorted(RECIPE_OPS))
def test_generated_images_match_torchvision_kernels(name):
    kinds = set()
    for index in range(12):
        h, w = [(75, 100), (100, 63), (40, 41)][index % 3]
        image = photo(h, w, seed=index)
        steps = check_against_torchvision(
            RECIPE_OPS[name], image, boxes_for(h, w, seed=index), mask_for(h, w, index), index
        )
        kinds |= {s["kind"] for s in steps}
    assert kinds, "the draws never changed the image"


def real_samples(realvoc, count=6):
    samples = []
    for xml in sorted(realvoc.rglob("*.xml")):
        jpgs = sorted(xml.parent.parent.rglob(xml.stem + ".jpg"))
        if not jpgs:
            continue
        image = (
            decode_jpeg(read_file(str(jpgs[0])), mode=ImageReadMode.RGB).permute(1, 2, 0).numpy()
        )
        boxes = []
        for obj in ET.parse(xml).getroot().iter("bndbox"):
            boxes.append([float(obj.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")])
        if boxes:
            h, w = image.shape[:2]
            b = np.clip(np.array(boxes, np.float32), 0, [w, h, w, h]).astype(np.float32)
            samples.append((np.ascontiguousarray(image), b))
        if len(samples) == count:
            break
    return samples


@pytest.mark.parametrize("name", ["ssd", "segmentation", "scale_jitter_crop", "zoom_out"])
def test_real_voc_images_match_torchvision_kernels(realvoc, name):
    samples = real_samples(realvoc)
    assert samples
    ops = [
        _core.Op(op.name, **{**op.args, **({"size": [300, 300]} if op.name == "resize" else {})})
        for op in RECIPE_OPS[name]
    ]
    if name == "segmentation":
        ops = [
            _core.Op("random_resize", min_size=260, max_size=1040),
            _core.Op("hflip", p=0.5),
            _core.Op("random_crop", size=[480, 480], pad_if_needed=True, fill=0, mask_fill=255),
        ]
    if name == "scale_jitter_crop":
        ops = [
            _core.Op("scale_jitter", target_size=[512, 512]),
            _core.Op("random_crop", size=[512, 512], pad_if_needed=True, fill=0, mask_fill=255),
        ]
    for index, (image, boxes) in enumerate(samples):
        h, w = image.shape[:2]
        check_against_torchvision(ops, image, boxes, mask_for(h, w, index), index)


def test_iou_crop_zeroes_boxes_centred_outside_and_needs_boxes():
    image = photo(100, 100)
    boxes = np.array([[0, 0, 10, 10], [40, 40, 60, 60], [90, 90, 100, 100]], np.float32)
    ops = [_core.Op("random_iou_crop", sampler_options=[0.3], min_scale=0.3, max_scale=0.6)]
    for index in range(10):
        steps = _core.plan_steps(ops, 100, 100, boxes, 0, 0, index)
        (crop,) = steps
        assert crop["kind"] == "crop" and crop["zero_boxes_outside"]
        check_against_torchvision(ops, image, boxes, mask_for(100, 100), index)
    with pytest.raises(ValueError, match="needs bounding boxes"):
        run_pipeline(ops, image)
    # no boxes and no option >= 1: torchvision loops forever; the engine names the problem
    with pytest.raises(ValueError, match="no crop"):
        run_pipeline(ops, image, boxes=np.zeros((0, 4), np.float32))
    plan = plan_transforms(v2.RandomIoUCrop(), ())
    assert plan.blocker and "bounding boxes" in plan.reason


def test_iou_crop_where_no_crop_fits_keeps_the_sample_with_an_option_of_one():
    """torchvision loops until a round succeeds: with an option >= 1 (its defaults have 1.0)
    a round that keeps the sample always comes; the engine's round cap never cuts in first."""
    image = photo(200, 200)
    tiny = np.array([[10, 10, 11, 11]], np.float32)  # no crop of >= 0.3 x side has IoU 0.9
    ops = [_core.Op("random_iou_crop", sampler_options=[0.9, 0.95, 0.99, 1.0])]
    for index in range(20):
        assert _core.plan_steps(ops, 200, 200, tiny, 0, 0, index) == []
        check_against_torchvision(ops, image, tiny, mask_for(200, 200), index)


def test_iou_crop_reports_the_sample_where_torchvision_would_loop_forever(tmp_path):
    image = photo(200, 200)
    tiny = np.array([[10, 10, 11, 11]], np.float32)
    ops = [_core.Op("random_iou_crop", sampler_options=[0.9])]
    with pytest.raises(ValueError, match="no crop in 1000 rounds of 40 trials.*1.0"):
        run_pipeline(ops, image, boxes=tiny)
    with pytest.raises(ValueError, match="no boxes and no sampler option >= 1"):
        run_pipeline(ops, image, boxes=np.zeros((0, 4), np.float32))
    # through the DataLoader: the error names the sample and its file
    from conveyor import DataLoader, datasets
    from conveyor.collate import detection_collate

    datasets.make_synthetic_voc(tmp_path, num_images=2, image_size=(200, 150), seed=1)
    crop = v2.RandomIoUCrop(min_scale=0.3, max_scale=0.31, sampler_options=[0.999])
    dataset = datasets.VOCDetection(
        tmp_path,
        image_set="trainval",
        transforms=v2.Compose([v2.ToImage(), crop]),
        target_format="boxes",
    )
    loader = DataLoader(dataset, batch_size=2, collate_fn=detection_collate)
    with pytest.raises(ValueError, match=r"sample \d \(.*\.jpg\): random_iou_crop found no crop"):
        next(iter(loader))


# ----------------------------------------------------------------------- distributions


def chi_square_p(a, b):
    """p-value of the two-sample chi-square test that counts `a` and `b` share a distribution."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = (a + b) > 0
    a, b = a[keep], b[keep]
    na, nb = a.sum(), b.sum()
    k1, k2 = np.sqrt(nb / na), np.sqrt(na / nb)
    stat = float((((k1 * a - k2 * b) ** 2) / (a + b)).sum())
    dof = len(a) - 1
    return float(torch.special.gammaincc(torch.tensor(dof / 2.0), torch.tensor(stat / 2.0)))


def binned(values, edges):
    return np.histogram(np.asarray(values, np.float64), bins=edges)[0]


DRAWS = 3000


def engine_draws(ops, width, height, boxes=None):
    return [_core.plan_steps(ops, width, height, boxes, 11, 0, i) for i in range(DRAWS)]


def torchvision_draws(transform, inputs):
    torch.manual_seed(11)
    return [transform.make_params(inputs) for _ in range(DRAWS)]


def out_size(steps, width, height):
    for step in steps:
        if step["kind"] in ("resize", "crop"):
            width, height = step["width"], step["height"]
        elif step["kind"] == "pad":
            left, top, right, bottom = step["padding"]
            width, height = width + left + right, height + top + bottom
    return width, height


IMAGE = tv_tensors.Image(torch.zeros(3, 375, 500, dtype=torch.uint8))


def test_random_resize_distribution():
    ours = [
        out_size(s, 500, 375)[1]
        for s in engine_draws([_core.Op("random_resize", min_size=260, max_size=1040)], 500, 375)
    ]
    theirs = [p["size"][0] for p in torchvision_draws(v2.RandomResize(260, 1040), [IMAGE])]
    edges = np.linspace(260, 1040, 14)
    assert chi_square_p(binned(ours, edges), binned(theirs, edges)) > 1e-4
    assert min(ours) >= 260 and max(ours) < 1040


def test_random_shortest_size_distribution():
    choices = [480, 512, 544, 576, 608]
    ops = [_core.Op("random_shortest_size", min_size=choices, max_size=1000)]
    ours = [out_size(s, 500, 375) for s in engine_draws(ops, 500, 375)]
    t = v2.RandomShortestSize(choices, max_size=1000)
    theirs = [tuple(p["size"][::-1]) for p in torchvision_draws(t, [IMAGE])]
    assert set(ours) == set(theirs)  # same sizes for the same choices
    keys = sorted(set(ours))
    count = lambda xs: [xs.count(k) for k in keys]  # noqa: E731
    assert chi_square_p(count(ours), count(theirs)) > 1e-4


def test_scale_jitter_distribution():
    ops = [_core.Op("scale_jitter", target_size=[512, 512])]
    ours = [out_size(s, 500, 375)[0] for s in engine_draws(ops, 500, 375)]
    theirs = [p["size"][1] for p in torchvision_draws(v2.ScaleJitter((512, 512)), [IMAGE])]
    edges = np.linspace(0, 1100, 12)
    assert chi_square_p(binned(ours, edges), binned(theirs, edges)) > 1e-4


def test_zoom_out_distribution():
    ops = [_core.Op("random_zoom_out", p=0.5)]
    ours = [s[0]["padding"] if s else None for s in engine_draws(ops, 500, 375)]
    t = v2.RandomZoomOut(p=0.5)
    torch.manual_seed(11)
    theirs = []
    for _ in range(DRAWS):  # _RandomApplyTransform draws the p coin first
        theirs.append(None if torch.rand(1) >= t.p else tuple(t.make_params([IMAGE])["padding"]))
    a, b = (sum(x is not None for x in xs) for xs in (ours, theirs))
    assert chi_square_p([a, DRAWS - a], [b, DRAWS - b]) > 1e-4  # same rate
    edges = np.linspace(0, 1600, 12)
    for column in (0, 1, 2):
        a = binned([p[column] for p in ours if p], edges)
        b = binned([p[column] for p in theirs if p], edges)
        assert chi_square_p(a, b) > 1e-4


def test_iou_crop_distribution():
    boxes = np.array([[50, 40, 300, 300], [320, 100, 480, 360], [10, 200, 120, 370]], np.float32)
    ours = [
        s[0] if s else None for s in engine_draws([_core.Op("random_iou_crop")], 500, 375, boxes)
    ]
    bb = tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format="XYXY", canvas_size=(375, 500))
    theirs = torchvision_draws(v2.RandomIoUCrop(), [IMAGE, bb])
    kept = [sum(x is None for x in ours), sum(not p for p in theirs)]
    assert chi_square_p([kept[0], DRAWS - kept[0]], [kept[1], DRAWS - kept[1]]) > 1e-4
    for ours_key, theirs_key, top in (
        ("x", "left", 350),
        ("y", "top", 270),
        ("width", "width", 500),
        ("height", "height", 375),
    ):
        edges = np.linspace(0, top, 10)
        a = binned([c[ours_key] for c in ours if c], edges)
        b = binned([p[theirs_key] for p in theirs if p], edges)
        assert chi_square_p(a, b) > 1e-4, ours_key


def test_vflip_rate_is_p():
    ours = sum(bool(s) for s in engine_draws([_core.Op("vflip", p=0.3)], 50, 40))
    torch.manual_seed(11)
    theirs = int((torch.rand(DRAWS) < 0.3).sum())
    assert chi_square_p([ours, DRAWS - ours], [theirs, DRAWS - theirs]) > 1e-4


def test_recipe_transforms_plan_fully_native():
    ssd = v2.Compose(
        [
            v2.ToImage(),
            v2.RandomZoomOut(fill={tv_tensors.Image: (123, 117, 104), "others": 0}),
            v2.RandomIoUCrop(),
            v2.RandomHorizontalFlip(p=0.5),
            v2.Resize((300, 300)),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    plan = plan_transforms(ssd, (tv_tensors.BoundingBoxes,))
    assert plan.fully_native, plan.reason
    seg = v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResize(260, 1040),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomCrop(
                480, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: 255}
            ),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    plan = plan_transforms(seg, (tv_tensors.Mask,))
    assert plan.fully_native, plan.reason
    assert plan.ops[2].to_dict()["mask_fill"] == 255
    frcnn = v2.Compose(
        [v2.ToImage(), v2.RandomShortestSize([480, 512], 1000), v2.RandomVerticalFlip()]
    )
    assert plan_transforms(frcnn, (tv_tensors.BoundingBoxes,)).fully_native


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
@pytest.mark.parametrize("padding", [[3, 1, 0, 5], [7, 7, 7, 7], [1, 2]])
def test_pad_modes_match_torchvision(mode, padding):
    h, w = 20, 17
    image, mask, boxes = photo(h, w, seed=2), mask_for(h, w, 2), boxes_for(h, w, seed=2)
    ops = [_core.Op("pad", padding=padding, padding_mode=mode, fill=9, mask_fill=4)]
    if mode != "constant":  # torchvision refuses other modes with boxes; so does the engine
        with pytest.raises(ValueError, match="not supported with bounding boxes"):
            run_pipeline(ops, image, boxes=boxes)
        boxes = np.zeros((0, 4), np.float32)
        with pytest.raises(ValueError, match="not supported with bounding boxes"):
            run_pipeline(ops, image, boxes=boxes)
        assert plan_transforms(
            v2.Pad(padding, padding_mode=mode), (tv_tensors.BoundingBoxes,)
        ).blocker
        out, _, _, out_mask = run_pipeline(ops, image, mask=mask)
    else:
        out, out_boxes, _, out_mask = run_pipeline(ops, image, boxes=boxes, mask=mask)
    fill = dict(fill=9) if mode == "constant" else {}
    ref = F.pad(tv_tensors.Image(chw(image)), padding, padding_mode=mode, **fill)
    mask_fill = dict(fill=4) if mode == "constant" else {}
    ref_mask = F.pad(
        tv_tensors.Mask(torch.from_numpy(mask)[None]), padding, padding_mode=mode, **mask_fill
    )
    np.testing.assert_array_equal(out, ref.numpy())
    np.testing.assert_array_equal(out_mask, ref_mask[0].numpy())
    if mode == "constant":
        bb = tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format="XYXY", canvas_size=(h, w))
        np.testing.assert_allclose(out_boxes, F.pad(bb, padding).numpy(), atol=1e-4)


def test_random_crop_reflect_padding_and_too_large_reflect_is_named():
    image = photo(30, 40)
    ops = [_core.Op("random_crop", size=[36, 44], padding=4, padding_mode="reflect")]
    for index in range(4):
        check_against_torchvision_modes(ops, image, index)
    with pytest.raises(ValueError, match="reflect padding 50/50 is too large"):
        run_pipeline([_core.Op("pad", padding=50, padding_mode="reflect")], image)


def check_against_torchvision_modes(ops, image, index):
    h, w = image.shape[:2]
    (pad, crop) = _core.plan_steps(ops, w, h, None, 0, 0, index)
    out, _, _, _ = run_pipeline(ops, image, index=index)
    ref = F.pad(tv_tensors.Image(chw(image)), list(pad["padding"]), padding_mode="reflect")
    ref = F.crop(ref, crop["y"], crop["x"], crop["height"], crop["width"])
    np.testing.assert_array_equal(out, ref.numpy())
