"""Native ops vs torchvision.transforms.v2 on generated images (uint8 within +-1)."""

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from conveyor.loader.engine import run_pipeline

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def photo(height, width, seed=0):
    """A photo-like uint8 HWC image: smooth colour fields, sharp-edged patches, grain."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.integers(0, 256, (1, 3, 6, 8)).astype(np.float32))
    image = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")[0]
    image = image.permute(1, 2, 0).numpy()
    for _ in range(4):
        y, x = rng.integers(0, height), rng.integers(0, width)
        image[y : y + height // 4, x : x + width // 3] = rng.integers(0, 256, 3)
    image = image + rng.normal(0, 8, image.shape)
    return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))


def chw(image):
    return torch.from_numpy(image).permute(2, 0, 1).contiguous()


def assert_close_uint8(actual, expected, tolerance=1):
    actual = np.asarray(actual).astype(np.int32)
    expected = np.asarray(expected).astype(np.int32)
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= tolerance


@pytest.mark.parametrize(
    "size,out,antialias",
    [
        ((375, 500), (512, 512), True),
        ((375, 500), (224, 224), True),
        ((480, 640), (100, 37), True),
        ((50, 60), (512, 300), True),
        ((375, 500), (333, 97), False),
        ((7, 5), (3, 9), True),
        ((1, 1), (4, 4), True),
        ((300, 200), (300, 200), True),
    ],
)
def test_resize_matches_torchvision(size, out, antialias):
    image = photo(*size)
    native, _, _, _ = run_pipeline(
        [{"op": "resize", "size": list(out), "antialias": antialias}], image
    )
    expected = v2.Resize(out, antialias=antialias)(chw(image))
    assert_close_uint8(native, expected)


@pytest.mark.parametrize("size,max_size", [(256, None), (200, 300), (100, 120)])
def test_resize_shorter_side(size, max_size):
    for shape in [(375, 500), (500, 375), (64, 64)]:
        image = photo(*shape)
        native, _, _, _ = run_pipeline(
            [{"op": "resize", "size": size, "max_size": max_size}], image
        )
        expected = v2.Resize(size, max_size=max_size)(chw(image))
        assert_close_uint8(native, expected)


@pytest.mark.parametrize("crop", [(224, 224), (100, 300), (400, 600), (375, 500), (301, 13)])
def test_center_crop(crop):
    image = photo(375, 500)
    native, _, _, _ = run_pipeline([{"op": "center_crop", "size": list(crop)}], image)
    assert_close_uint8(native, v2.CenterCrop(crop)(chw(image)), tolerance=0)


@pytest.mark.parametrize("padding,fill", [(3, 0), ([1, 2], 7), ([1, 2, 3, 4], [10, 20, 30])])
def test_pad(padding, fill):
    image = photo(40, 50)
    native, _, _, _ = run_pipeline([{"op": "pad", "padding": padding, "fill": fill}], image)
    assert_close_uint8(native, v2.Pad(padding, fill=fill)(chw(image)), tolerance=0)


def test_flip_p1_and_p0():
    image = photo(60, 70)
    flipped, _, _, _ = run_pipeline([{"op": "hflip", "p": 1.0}], image)
    kept, _, _, _ = run_pipeline([{"op": "hflip", "p": 0.0}], image)
    assert_close_uint8(flipped, F.horizontal_flip(chw(image)), tolerance=0)
    assert_close_uint8(kept, chw(image), tolerance=0)


def test_flip_folded_into_resize_and_crop():
    image = photo(375, 500)
    ops = [
        {"op": "hflip", "p": 1.0},
        {"op": "center_crop", "size": [300, 301]},
        {"op": "resize", "size": [123, 77]},
        {"op": "hflip", "p": 1.0},
        {"op": "hflip", "p": 1.0},
    ]
    native, _, _, _ = run_pipeline(ops, image)
    expected = v2.Compose(
        [
            v2.RandomHorizontalFlip(1.0),
            v2.CenterCrop((300, 301)),
            v2.Resize((123, 77)),
            v2.RandomHorizontalFlip(1.0),
            v2.RandomHorizontalFlip(1.0),
        ]
    )(chw(image))
    assert_close_uint8(native, expected)


def test_resize_then_center_crop_then_pad():
    image = photo(375, 500)
    ops = [
        {"op": "resize", "size": 256},
        {"op": "center_crop", "size": 224},
        {"op": "pad", "padding": 2},
        {"op": "resize", "size": [100, 90]},
    ]
    native, _, _, _ = run_pipeline(ops, image)
    expected = v2.Compose([v2.Resize(256), v2.CenterCrop(224), v2.Pad(2), v2.Resize((100, 90))])(
        chw(image)
    )
    assert_close_uint8(native, expected)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_to_dtype_normalize(dtype):
    image = photo(100, 120)
    ops = [
        {"op": "resize", "size": [64, 80]},
        {"op": "to_dtype", "dtype": dtype, "scale": True},
        {"op": "normalize", "mean": MEAN, "std": STD},
    ]
    native, _, _, _ = run_pipeline(ops, image)
    torch_dtype = getattr(torch, dtype)
    expected = v2.Compose(
        [v2.Resize((64, 80)), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    )(chw(image)).to(torch_dtype)
    assert native.dtype == np.dtype(dtype)
    # +-1 uint8 level after resize, scaled by 1/255/std.
    tolerance = 1 / 255 / min(STD) + (1e-2 if dtype == "float16" else 1e-5)
    assert np.abs(native.astype(np.float32) - expected.float().numpy()).max() <= tolerance
    identical = np.abs(native.astype(np.float32) - expected.float().numpy()) <= (
        1e-2 if dtype == "float16" else 1e-5
    )
    assert identical.mean() > 0.99


def test_to_dtype_without_scale_and_uint8_output():
    image = photo(30, 40)
    as_float, _, _, _ = run_pipeline([{"op": "to_dtype", "dtype": "float32"}], image)
    np.testing.assert_array_equal(as_float, chw(image).float().numpy())
    as_uint8, _, _, _ = run_pipeline([{"op": "to_dtype", "dtype": "uint8"}], image)
    assert as_uint8.dtype == np.uint8
    np.testing.assert_array_equal(as_uint8, chw(image).numpy())


def test_boxes_follow_resize_flip_crop_and_vanish():
    image = photo(375, 500)
    boxes = np.array([[10, 20, 110, 220], [400, 300, 499, 374], [0, 0, 30, 30]], np.float32)
    labels = np.array([3, 7, 9])
    ops = [
        {"op": "resize", "size": [512, 512]},
        {"op": "hflip", "p": 1.0},
        {"op": "center_crop", "size": [400, 400]},
    ]
    _, out_boxes, out_labels, _ = run_pipeline(ops, image, boxes=boxes, labels=labels)
    tv_boxes = tv_tensors.BoundingBoxes(
        torch.from_numpy(boxes), format="XYXY", canvas_size=(375, 500)
    )
    _, expected = v2.Compose(
        [v2.Resize((512, 512)), v2.RandomHorizontalFlip(1.0), v2.CenterCrop((400, 400))]
    )(chw(image), tv_boxes)
    expected = expected.numpy()
    keep = (expected[:, 2] > expected[:, 0]) & (expected[:, 3] > expected[:, 1])
    assert not keep.all()  # the corner box falls outside the crop
    np.testing.assert_allclose(out_boxes, expected[keep], rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(out_labels, labels[keep])


def test_mask_nearest_follows_geometry():
    image = photo(375, 500)
    mask = np.random.default_rng(1).integers(0, 21, (375, 500), dtype=np.uint8)
    ops = [
        {"op": "resize", "size": [512, 300]},
        {"op": "hflip", "p": 1.0},
        {"op": "pad", "padding": [3, 4], "fill": 0},
        {"op": "center_crop", "size": [256, 256]},
    ]
    _, _, _, out_mask = run_pipeline(ops, image, mask=mask)
    tf = v2.Compose(
        [v2.Resize((512, 300)), v2.RandomHorizontalFlip(1.0), v2.Pad([3, 4]), v2.CenterCrop(256)]
    )
    _, expected = tf(chw(image), tv_tensors.Mask(torch.from_numpy(mask)))
    np.testing.assert_array_equal(out_mask, expected.numpy())


def coordinate_mask(height, width):
    """Mask holding x (for width <= 256): nearest sampling then reveals the crop origin."""
    return np.tile(np.arange(width, dtype=np.uint8), (height, 1))


def test_random_resized_crop_is_a_resized_crop_of_the_image():
    image = photo(200, 250)
    for index in range(20):
        ops = [{"op": "random_resized_crop", "size": [64, 64]}]
        out, _, _, xs = run_pipeline(ops, image, mask=coordinate_mask(200, 250), index=index)
        _, _, _, ys = run_pipeline(ops, image, mask=coordinate_mask(250, 200).T.copy(), index=index)
        left, top = int(xs[0, 0]), int(ys[0, 0])

        # Find the crop size whose resize reproduces the output exactly (+-1).
        def nearest(i, size):
            return min(int(np.floor(np.float32(i) * np.float32(size / 64))), size - 1)

        widths = [
            w
            for w in range(1, 251 - left)
            if nearest(63, w) == int(xs[0, -1]) - left and nearest(31, w) == int(xs[0, 31]) - left
        ]
        heights = [
            h
            for h in range(1, 201 - top)
            if nearest(63, h) == int(ys[-1, 0]) - top and nearest(31, h) == int(ys[31, 0]) - top
        ]
        found = False
        for h in heights:
            for w in widths:
                reference = F.resized_crop(chw(image), top, left, h, w, [64, 64], antialias=True)
                if np.abs(out.astype(int) - reference.numpy().astype(int)).max() <= 1:
                    area, ratio = h * w / (200 * 250), w / h
                    assert 0.08 - 0.01 <= area <= 1.0 and 3 / 4 - 0.05 <= ratio <= 4 / 3 + 0.05
                    found = True
        assert found, f"index {index}: no crop reproduces the output"


def test_random_draws_depend_on_seed_epoch_index_only():
    image = photo(120, 160)
    ops = [{"op": "random_resized_crop", "size": 32}, {"op": "hflip"}]
    a = run_pipeline(ops, image, seed=5, epoch=2, index=9)[0]
    b = run_pipeline(ops, image, seed=5, epoch=2, index=9)[0]
    np.testing.assert_array_equal(a, b)
    others = [
        run_pipeline(ops, image, seed=s, epoch=e, index=i)[0]
        for s, e, i in [(6, 2, 9), (5, 3, 9), (5, 2, 10)]
    ]
    assert all(not np.array_equal(a, o) for o in others)


def test_random_crop_padding_and_pad_if_needed():
    image = photo(20, 30)
    out, _, _, _ = run_pipeline(
        [{"op": "random_crop", "size": [40, 50], "pad_if_needed": True, "fill": 5}], image
    )
    assert out.shape == (3, 40, 50)
    out, _, _, _ = run_pipeline([{"op": "random_crop", "size": [24, 34], "padding": 2}], image)
    assert out.shape == (3, 24, 34)  # the padded image exactly: no randomness left
    np.testing.assert_array_equal(out, v2.Pad(2)(chw(image)).numpy())
    with pytest.raises(ValueError, match="larger than"):
        run_pipeline([{"op": "random_crop", "size": [40, 50]}], image)


@pytest.mark.parametrize(
    "ops,message",
    [
        ([{"op": "blur"}], "unknown op"),
        ([{"op": "resize"}], "resize needs size"),
        ([{"op": "normalize", "mean": MEAN, "std": STD}], "to_dtype"),
        ([{"op": "to_dtype", "dtype": "float32"}, {"op": "resize", "size": 4}], "before to_dtype"),
        ([{"op": "to_dtype", "dtype": "int7"}], "dtype"),
        ([{"op": "hflip", "p": 2}], "p must be"),
        ([{"op": "resize", "size": [0, 4]}], "positive"),
        (
            [
                {"op": "to_dtype", "dtype": "float32", "scale": True},
                {"op": "normalize", "mean": MEAN, "std": [1, 0, 1]},
            ],
            "non-zero",
        ),
    ],
)
def test_invalid_pipelines_raise_value_error(ops, message):
    with pytest.raises(ValueError, match=message):
        run_pipeline(ops, photo(10, 10))
