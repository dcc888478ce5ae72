"""The native photometric kernels (conveyor._core.kernels) against torchvision v2's kernels
given the same parameters, on generated and real VOC images; their random parameters against
torchvision's make_params distributions (fixed seeds on both sides: the statistics are
deterministic, never flaky); and the per-(seed, epoch, index) determinism of the draws."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch
from imagegen import photo_like
from torchvision import tv_tensors
from torchvision.io import decode_jpeg
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from conveyor._core import kernels as K

FACTORS = [0.0, 0.25, 0.5, 0.875, 1.0, 1.125, 1.5, 1.7, 3.0]
HUES = [-0.5, -0.33, -0.05, 0.0, 0.013, 0.05, 0.25, 0.5]


def chw(hwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(hwc.transpose(2, 0, 1))


def generated_images() -> list[np.ndarray]:
    images = [chw(photo_like(37, 53, seed=1)), chw(photo_like(64, 48, seed=2))]
    rng = np.random.default_rng(3)
    images.append(rng.integers(0, 256, (3, 29, 31), dtype=np.uint8))  # noise: every value
    gray = rng.integers(0, 256, (1, 20, 24), dtype=np.uint8)
    images.append(np.repeat(gray, 3, axis=0))  # r == g == b: hue/saturation edge cases
    saturated = np.zeros((3, 16, 16), np.uint8)
    saturated[0, :, :8] = 255
    saturated[1, 8:] = 255
    saturated[2, ::2] = 128
    images.append(saturated)
    return images


@pytest.fixture(scope="module")
def real_images(realvoc) -> list[np.ndarray]:
    paths = sorted(p for p in realvoc.rglob("*.jpg"))[:4]
    if not paths:
        pytest.skip("no JPEG in the real VOC corpus")
    return [
        decode_jpeg(torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8)).numpy()
        for p in paths
    ]


def assert_close(ours: np.ndarray, reference: torch.Tensor, levels: int = 0) -> None:
    expected = reference.numpy()
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    diff = np.abs(ours.astype(np.int32) - expected.astype(np.int32))
    assert diff.max(initial=0) <= levels, (
        f"{(diff > levels).sum()} values off by up to {diff.max()}"
    )


@pytest.mark.parametrize("factor", FACTORS)
@pytest.mark.parametrize("name", ["adjust_brightness", "adjust_contrast", "adjust_saturation"])
def test_factor_kernels_equal_torchvision(name, factor):
    for image in generated_images():
        ours = getattr(K, name)(image, factor)
        assert_close(ours, getattr(F, name)(torch.from_numpy(image), factor))


@pytest.mark.parametrize("hue", HUES)
def test_adjust_hue_equals_torchvision(hue):
    for image in generated_images():
        assert_close(K.adjust_hue(image, hue), F.adjust_hue(torch.from_numpy(image), hue))


def every_rg_pair_image(width: int = 1021) -> np.ndarray:
    """Every (r, g) pair with 16 blue levels (1M pixels), rows of an odd width so that the
    vectorised kernels' 8-pixel blocks and their scalar tails both run."""
    r, g, b = np.meshgrid(np.arange(256), np.arange(256), np.arange(0, 256, 17), indexing="ij")
    pixels = np.stack([r.ravel(), g.ravel(), b.ravel()]).astype(np.uint8)
    height = -(-pixels.shape[1] // width)
    padded = np.zeros((3, height * width), np.uint8)
    padded[:, : pixels.shape[1]] = pixels
    return padded.reshape(3, height, width)


@pytest.mark.parametrize("hue", [-0.5, -0.21, 0.013, 0.37])
def test_adjust_hue_equals_torchvision_on_every_rg_pair(hue):
    image = every_rg_pair_image()
    assert_close(K.adjust_hue(image, hue), F.adjust_hue(torch.from_numpy(image), hue))


def test_parameterless_kernels_equal_torchvision():
    for image in generated_images():
        t = torch.from_numpy(image)
        assert_close(K.rgb_to_grayscale(image), F.rgb_to_grayscale(t, num_output_channels=3))
        assert_close(K.autocontrast(image), F.autocontrast(t))
        assert_close(K.equalize(image), F.equalize(t))
        for perm in itertools.permutations(range(3)):
            assert_close(K.permute_channels(image, list(perm)), F.permute_channels(t, list(perm)))


def test_autocontrast_and_equalize_edge_cases():
    flat = np.full((3, 10, 12), 77, np.uint8)  # constant channels: unchanged
    t = torch.from_numpy(flat)
    assert_close(K.autocontrast(flat), F.autocontrast(t))
    assert_close(K.equalize(flat), F.equalize(t))
    few = flat.copy()
    few[:, 0, :3] = 200  # fewer than 255 pixels off the maximum... step 0 for the channel
    assert_close(K.equalize(few), F.equalize(torch.from_numpy(few)))
    assert_close(K.autocontrast(few), F.autocontrast(torch.from_numpy(few)))


@pytest.mark.parametrize(
    "kernel_size, sigma",
    [
        ((3, 3), (0.1, 0.1)),
        ((3, 3), (1.0, 1.0)),
        ((5, 9), (0.7, 2.3)),
        ((23, 23), (1.5, 1.5)),
        ((1, 7), (2.0, 0.5)),
        ((9, 5), (4.0, 4.0)),
    ],
)
def test_gaussian_blur_equals_torchvision(kernel_size, sigma):
    for image in generated_images():
        ours = K.gaussian_blur(image, list(kernel_size), list(sigma))
        reference = F.gaussian_blur(torch.from_numpy(image), list(kernel_size), list(sigma))
        # torch's conv2d sums the 2-D kernel in its own order; ours is separable: a value on a
        # rounding boundary may land one level apart.
        assert_close(ours, reference, levels=1)


def test_gaussian_kernel_equals_torchvision():
    from torchvision.transforms.v2.functional._misc import _get_gaussian_kernel1d

    for size, sigma in [(1, 1.0), (3, 0.1), (5, 0.7), (23, 1.5), (9, 4.0)]:
        expected = _get_gaussian_kernel1d(size, sigma, torch.float32, torch.device("cpu"))
        np.testing.assert_allclose(K.gaussian_kernel1d(size, sigma), expected.numpy(), rtol=1e-6)


def test_gaussian_blur_rejects_what_torchvision_rejects():
    image = chw(photo_like(6, 40))
    with pytest.raises(ValueError, match="reflect padding"):
        K.gaussian_blur(image, [5, 13], [1.0, 1.0])  # half kernel 6 >= height 6
    with pytest.raises(ValueError, match="odd"):
        K.gaussian_blur(image, [4, 3], [1.0, 1.0])
    with pytest.raises(ValueError, match="sigma"):
        K.gaussian_blur(image, [3, 3], [0.0, 1.0])
    with pytest.raises(ValueError, match="hue"):
        K.adjust_hue(image, 0.6)
    with pytest.raises(ValueError, match="non-negative"):
        K.adjust_contrast(image, -0.1)


def test_kernels_equal_torchvision_on_real_voc_images(real_images):
    for image in real_images:
        t = torch.from_numpy(image)
        for factor in (0.5, 1.125, 1.5):
            assert_close(K.adjust_brightness(image, factor), F.adjust_brightness(t, factor))
            assert_close(K.adjust_contrast(image, factor), F.adjust_contrast(t, factor))
            assert_close(K.adjust_saturation(image, factor), F.adjust_saturation(t, factor))
        for hue in (-0.05, 0.05, 0.4):
            assert_close(K.adjust_hue(image, hue), F.adjust_hue(t, hue))
        assert_close(K.rgb_to_grayscale(image), F.rgb_to_grayscale(t, num_output_channels=3))
        assert_close(K.autocontrast(image), F.autocontrast(t))
        assert_close(K.equalize(image), F.equalize(t))
        assert_close(
            K.gaussian_blur(image, [5, 5], [1.3, 1.3]),
            F.gaussian_blur(t, [5, 5], [1.3, 1.3]),
            levels=1,
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.uint8])
def test_erase_equals_torchvision(dtype):
    image = F.normalize(
        F.to_dtype(torch.from_numpy(chw(photo_like(30, 40))), torch.float32, scale=True),
        [0.485, 0.456, 0.406],
        [0.229, 0.224, 0.225],
    )
    if dtype == torch.uint8:
        image = torch.from_numpy(chw(photo_like(30, 40)))
    image = image.to(dtype)
    for values, per_pixel in [
        ([0.0, 0.0, 0.0], False),
        ([0.5, -1.25, 2.0], False),
        ([12.0, 200.0, 3.0], False),
    ]:
        v = torch.tensor(values)[:, None, None]
        expected = F.erase(image, 3, 5, 11, 17, v)
        ours = K.erase(image.numpy(), 3, 5, 11, 17, values, per_pixel)
        assert torch.equal(torch.from_numpy(ours), expected)
    if dtype != torch.uint8:
        noise = torch.empty(3, 11, 17).normal_(generator=torch.Generator().manual_seed(0))
        expected = F.erase(image, 3, 5, 11, 17, noise)
        ours = K.erase(image.numpy(), 3, 5, 11, 17, noise.flatten().tolist(), True)
        assert torch.equal(torch.from_numpy(ours), expected)


# ---- the transform classes: our draw, executed by torchvision's own transform() ----


def jitter_params(steps: list[dict]) -> dict:
    """ColorJitter.transform's params from our plan: its order, and the unused kinds after."""
    kinds = ["brightness", "contrast", "saturation", "hue"]
    order = [kinds.index(s["kind"]) for s in steps]
    order += [i for i in range(4) if i not in order]
    params = {f"{k}_factor": None for k in kinds}
    for s in steps:
        params[f"{s['kind']}_factor"] = s["factor"]
    return dict(fn_idx=torch.tensor(order), **params)


def distort_params(steps: list[dict]) -> dict:
    kinds = [s["kind"] for s in steps]
    params = {f"{k}_factor": None for k in ("brightness", "contrast", "saturation", "hue")}
    for s in steps:
        if s["kind"] != "permute":
            params[f"{s['kind']}_factor"] = s["factor"]
    # Contrast goes before saturation/hue or after them; with neither, either order is one.
    later = [i for i, k in enumerate(kinds) if k in ("saturation", "hue")]
    params["contrast_before"] = (
        "contrast" not in kinds or not later or (kinds.index("contrast") < later[0])
    )
    params["channel_permutation"] = (
        torch.tensor(steps[-1]["permutation"]) if kinds and kinds[-1] == "permute" else None
    )
    return params


SPECS = {
    "color_jitter": (
        dict(brightness=(0.6, 1.4), contrast=(0.6, 1.4), saturation=(0.6, 1.4), hue=(-0.1, 0.1)),
        v2.ColorJitter(0.4, 0.4, 0.4, 0.1),
        jitter_params,
    ),
    "photometric_distort": (
        dict(
            brightness=(0.875, 1.125),
            contrast=(0.5, 1.5),
            saturation=(0.5, 1.5),
            hue=(-0.05, 0.05),
            p=0.5,
        ),
        v2.RandomPhotometricDistort(),
        distort_params,
    ),
}


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_planned_transform_equals_torchvision_class(kind):
    spec, transform, to_params = SPECS[kind]
    image = chw(photo_like(40, 56, seed=5))
    seen = set()
    for index in range(40):
        steps = K.plan_photometric(kind, spec, 7, 0, index)
        seen.add(tuple(s["kind"] for s in steps))
        ours = K.apply_photometric(image, kind, spec, 7, 0, index)
        expected = transform.transform(torch.from_numpy(image), to_params(steps))
        assert_close(ours, expected)
    assert len(seen) > 10  # the draws reached many different orders / subsets


def test_other_photometric_transforms_follow_their_plan():
    image = chw(photo_like(40, 56, seed=6))
    t = torch.from_numpy(image)
    for index in range(20):
        steps = K.plan_photometric(
            "gaussian_blur", dict(kernel_size=(5, 7), sigma=(0.1, 2.0)), 1, 2, index
        )
        (step,) = steps
        assert 0.1 <= step["sigma"][0] <= 2.0 and step["sigma"][0] == step["sigma"][1]
        ours = K.apply_photometric(
            image, "gaussian_blur", dict(kernel_size=(5, 7), sigma=(0.1, 2.0)), 1, 2, index
        )
        reference = v2.GaussianBlur((5, 7), (0.1, 2.0)).transform(t, dict(sigma=step["sigma"]))
        assert_close(ours, reference, levels=1)
    for kind, fn in [
        ("random_grayscale", lambda x: F.rgb_to_grayscale(x, 3)),
        ("random_autocontrast", F.autocontrast),
        ("random_equalize", F.equalize),
    ]:
        applied = 0
        for index in range(20):
            steps = K.plan_photometric(kind, dict(p=0.5), 1, 0, index)
            ours = K.apply_photometric(image, kind, dict(p=0.5), 1, 0, index)
            applied += bool(steps)
            assert_close(ours, fn(t) if steps else t)
        assert 0 < applied < 20
    for index in range(6):
        (step,) = K.plan_photometric("random_channel_permutation", {}, 1, 0, index)
        assert_close(
            K.apply_photometric(image, "random_channel_permutation", {}, 1, 0, index),
            F.permute_channels(t, step["permutation"]),
        )
    assert_close(K.apply_photometric(image, "grayscale", {}, 1, 0, 0), F.rgb_to_grayscale(t, 3))


def test_invalid_specs_are_rejected_with_the_setting():
    with pytest.raises(ValueError, match="hue range"):
        K.plan_photometric("color_jitter", dict(hue=(-0.6, 0.1)), 0, 0, 0)
    with pytest.raises(ValueError, match="brightness range"):
        K.plan_photometric("color_jitter", dict(brightness=(1.2, 0.8)), 0, 0, 0)
    with pytest.raises(ValueError, match="kernel_size"):
        K.plan_photometric("gaussian_blur", dict(kernel_size=(4, 3)), 0, 0, 0)
    with pytest.raises(ValueError, match="sigma"):
        K.plan_photometric("gaussian_blur", dict(kernel_size=(3, 3), sigma=(2.0, 1.0)), 0, 0, 0)
    with pytest.raises(ValueError, match="p must"):
        K.plan_photometric("random_equalize", dict(p=1.5), 0, 0, 0)
    with pytest.raises(ValueError, match="RandomErasing value"):
        K.plan_erasing(dict(value=(1.0, 2.0)), 10, 10, 0, 0, 0)


# ---- determinism ----


def test_draws_depend_only_on_seed_epoch_index():
    spec = SPECS["photometric_distort"][0]
    a = [K.plan_photometric("photometric_distort", spec, 3, 1, i) for i in range(50)]
    b = [K.plan_photometric("photometric_distort", spec, 3, 1, i) for i in reversed(range(50))]
    assert a == b[::-1]
    other_epoch = [K.plan_photometric("photometric_distort", spec, 3, 2, i) for i in range(50)]
    other_seed = [K.plan_photometric("photometric_distort", spec, 4, 1, i) for i in range(50)]
    assert a != other_epoch and a != other_seed
    e1 = K.plan_erasing(dict(p=1.0, value="random"), 30, 40, 5, 0, 9)
    assert e1 == K.plan_erasing(dict(p=1.0, value="random"), 30, 40, 5, 0, 9)


# ---- distributions: ours vs torchvision's make_params (both seeded: deterministic) ----

N = 3000


def ks_statistic(a, b) -> float:
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def assert_same_distribution(ours, theirs) -> None:
    """Two-sample Kolmogorov-Smirnov at alpha = 0.001 (c = 1.95)."""
    n, m = len(ours), len(theirs)
    assert n > 100 and m > 100
    limit = 1.95 * math.sqrt((n + m) / (n * m))
    assert ks_statistic(ours, theirs) < limit


def assert_frequency(count: int, n: int, p: float) -> None:
    """A binomial count within 4.5 standard deviations of n * p."""
    assert abs(count - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)) + 1


def assert_uniform_over(counter: Counter, outcomes: int, n: int) -> None:
    """Pearson chi-square against uniform; limit: the 0.999 quantile (Wilson-Hilferty)."""
    assert len(counter) == outcomes
    expected = n / outcomes
    chi2 = sum((c - expected) ** 2 / expected for c in counter.values())
    k = outcomes - 1
    limit = k * (1 - 2 / (9 * k) + 3.09 * math.sqrt(2 / (9 * k))) ** 3
    assert chi2 < limit


def image_input() -> torch.Tensor:
    return tv_tensors.Image(torch.zeros(3, 8, 8, dtype=torch.uint8))


def test_color_jitter_distribution_matches_torchvision():
    spec, transform, _ = SPECS["color_jitter"]
    torch.manual_seed(0)
    theirs = [transform.make_params([image_input()]) for _ in range(N)]
    ours = [K.plan_photometric("color_jitter", spec, 11, 0, i) for i in range(N)]
    for kind in ("brightness", "contrast", "saturation", "hue"):
        assert_same_distribution(
            [s["factor"] for p in ours for s in p if s["kind"] == kind],
            [t[f"{kind}_factor"] for t in theirs],
        )
    order_ours = Counter(tuple(s["kind"] for s in p) for p in ours)
    assert_uniform_over(order_ours, 24, N)
    order_theirs = Counter(tuple(t["fn_idx"].tolist()) for t in theirs)
    assert_uniform_over(order_theirs, 24, N)  # the reference itself: a uniform permutation


def test_photometric_distort_distribution_matches_torchvision():
    spec, transform, _ = SPECS["photometric_distort"]
    torch.manual_seed(0)
    theirs = [transform.make_params([image_input()]) for _ in range(N)]
    ours = [K.plan_photometric("photometric_distort", spec, 11, 0, i) for i in range(N)]
    for kind in ("brightness", "contrast", "saturation", "hue"):
        ours_values = [s["factor"] for p in ours for s in p if s["kind"] == kind]
        theirs_values = [t[f"{kind}_factor"] for t in theirs if t[f"{kind}_factor"] is not None]
        assert_frequency(len(ours_values), N, 0.5)
        assert_frequency(len(theirs_values), N, 0.5)
        assert_same_distribution(ours_values, theirs_values)
    perms = Counter(tuple(p[-1]["permutation"]) for p in ours if p and p[-1]["kind"] == "permute")
    assert_frequency(sum(perms.values()), N, 0.5)
    assert_uniform_over(perms, 6, sum(perms.values()))
    # contrast before saturation/hue half of the time, given both are drawn
    before = after = 0
    for p in ours:
        kinds = [s["kind"] for s in p]
        if "contrast" in kinds and "saturation" in kinds:
            before += kinds.index("contrast") < kinds.index("saturation")
            after += kinds.index("contrast") > kinds.index("saturation")
    assert_frequency(before, before + after, 0.5)


def test_gaussian_blur_sigma_distribution_matches_torchvision():
    transform = v2.GaussianBlur(5, (0.1, 2.0))
    torch.manual_seed(0)
    theirs = [transform.make_params([image_input()])["sigma"][0] for _ in range(N)]
    ours = [
        K.plan_photometric("gaussian_blur", dict(kernel_size=(5, 5), sigma=(0.1, 2.0)), 2, 0, i)[0][
            "sigma"
        ][0]
        for i in range(N)
    ]
    assert_same_distribution(ours, theirs)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_random_apply_frequencies(p):
    for kind in ("random_grayscale", "random_autocontrast", "random_equalize"):
        applied = sum(bool(K.plan_photometric(kind, dict(p=p), 4, 0, i)) for i in range(N))
        assert_frequency(applied, N, p)


def test_erasing_distribution_matches_torchvision():
    transform = v2.RandomErasing(p=1.0, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)
    inputs = [tv_tensors.Image(torch.zeros(3, 60, 80))]
    torch.manual_seed(0)
    theirs = [transform.make_params(inputs) for _ in range(N)]
    ours = [K.plan_erasing(dict(p=1.0, value=0), 60, 80, 8, 0, i) for i in range(N)]
    assert all(o["apply"] for o in ours)
    for key, theirs_key in [("top", "i"), ("left", "j"), ("height", "h"), ("width", "w")]:
        assert_same_distribution([o[key] for o in ours], [t[theirs_key] for t in theirs])
    areas_ours = [o["height"] * o["width"] for o in ours]
    areas_theirs = [t["h"] * t["w"] for t in theirs]
    assert_same_distribution(areas_ours, areas_theirs)
    skipped = sum(not K.plan_erasing(dict(p=0.5), 60, 80, 8, 0, i)["apply"] for i in range(N))
    assert_frequency(skipped, N, 0.5)
    noise = K.plan_erasing(dict(p=1.0, value="random"), 60, 80, 8, 0, 1)
    values = np.asarray(noise["values"])
    assert noise["per_pixel"] and values.size == 3 * noise["height"] * noise["width"]
    torch.manual_seed(0)
    reference = torch.empty(values.size).normal_().numpy()
    assert_same_distribution(values, reference)


# ---- through the loader: torchvision's own classes run natively ----


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    from conveyor import datasets

    root = tmp_path_factory.mktemp("voc")
    datasets.make_synthetic_voc(root, num_images=12, image_size=(200, 150), seed=3)
    return root


def detection(root, tf):
    from conveyor import datasets

    return datasets.VOCDetection(root, image_set="trainval", transforms=tf, target_format="boxes")


def native_and_python(root, tf, workers=2, **kwargs):
    import warnings

    from conveyor import DataLoader
    from conveyor.collate import detection_collate

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "cannot run natively" warning
        native = DataLoader(
            detection(root, tf),
            batch_size=4,
            num_workers=workers,
            collate_fn=detection_collate,
            **kwargs,
        )
        batches = list(native)
    assert native.stats.path == "native"
    python = torch.utils.data.DataLoader(
        detection(root, tf), batch_size=4, collate_fn=detection_collate
    )
    return batches, list(python)


# Settings whose draws are fixed (a one-point range, p=1): the native loader must equal
# torchvision run in Python on the same dataset. Photometric ops before and after geometry.
FIXED = [
    [v2.RandomAutocontrast(p=1.0)],
    [v2.ColorJitter(brightness=(1.3, 1.3))],
    [v2.ColorJitter(contrast=(0.7, 0.7))],
    [v2.ColorJitter(saturation=(1.6, 1.6))],
    [v2.ColorJitter(hue=(-0.2, -0.2))],
    [v2.RandomEqualize(p=1.0), v2.Grayscale(3)],
    [v2.RandomGrayscale(p=1.0)],
]


@pytest.mark.parametrize("before", [True, False], ids=["before_geometry", "after_geometry"])
@pytest.mark.parametrize("ops", FIXED, ids=lambda ops: "+".join(type(o).__name__ for o in ops))
def test_loader_runs_photometric_ops_natively_as_torchvision(voc_root, ops, before):
    geometry = [v2.Resize((96, 96)), v2.RandomCrop((64, 80))]
    tf = v2.Compose([v2.ToImage()] + (ops + geometry if before else geometry + ops))
    native_and_python(voc_root, tf, workers=0)  # runs natively with a random crop too
    # RandomCrop draws differ between the two paths: compare crop-free geometry.
    tf = v2.Compose([v2.ToImage()] + (ops + geometry[:1] if before else geometry[:1] + ops))
    native, python = native_and_python(voc_root, tf)
    for (images_a, targets_a), (images_b, targets_b) in zip(native, python):
        for a, b in zip(images_a, images_b):
            assert torch.equal(a, b)
        for a, b in zip(targets_a, targets_b):
            assert torch.equal(a["labels"], b["labels"])


def test_loader_gaussian_blur_within_one_level(voc_root):
    tf = v2.Compose([v2.ToImage(), v2.Resize((96, 96)), v2.GaussianBlur((5, 7), (1.2, 1.2))])
    native, python = native_and_python(voc_root, tf)
    for (images_a, _), (images_b, _) in zip(native, python):
        for a, b in zip(images_a, images_b):
            assert (a.int() - b.int()).abs().max() <= 1


def ssd_like(p=0.5):
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomPhotometricDistort(p=p),
            v2.RandomHorizontalFlip(),
            v2.Resize((120, 120)),
            v2.ColorJitter(0.2, 0.2, 0.2, 0.05),
            v2.RandomChannelPermutation(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]),
            v2.RandomErasing(p=0.5, value=0),
            v2.SanitizeBoundingBoxes(),
        ]
    )


def test_random_photometric_pipeline_is_native_and_deterministic(voc_root):
    from conveyor import DataLoader
    from conveyor.collate import detection_collate

    def run(workers, seed=5, epoch_count=1):
        loader = DataLoader(
            detection(voc_root, ssd_like()),
            batch_size=4,
            num_workers=workers,
            shuffle=True,
            seed=seed,
            collate_fn=detection_collate,
        )
        epochs = [list(loader) for _ in range(epoch_count)]
        assert loader.stats.path == "native"
        return epochs

    (one,) = run(1)
    (two,) = run(2)
    for (images_a, targets_a), (images_b, targets_b) in zip(one, two):
        assert all(torch.equal(a, b) for a, b in zip(images_a, images_b))
        assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(targets_a, targets_b))
    first, second = run(2, epoch_count=2)
    assert not all(torch.equal(a, b) for (x, _), (y, _) in zip(first, second) for a, b in zip(x, y))
    erased = sum(bool((image == 0).all(dim=0).any()) for images, _ in one for image in images)
    assert 0 < erased < 12  # p=0.5 erasing with value 0 leaves exact zeros in every channel


@pytest.mark.filterwarnings("ignore:RandomErasing")
def test_erasing_changes_only_its_rectangle(voc_root):
    base = [
        v2.ToImage(),
        v2.Resize((64, 64)),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize([0.5] * 3, [0.25] * 3),
    ]
    plain, _ = native_and_python(voc_root, v2.Compose(base))
    erased, _ = native_and_python(
        voc_root, v2.Compose(base + [v2.RandomErasing(p=1.0, value=(1.0, 2.0, 3.0))])
    )
    for (images_a, _), (images_b, _) in zip(plain, erased):
        for a, b in zip(images_a, images_b):
            changed = (a != b).any(dim=0)
            rows, cols = changed.any(dim=1).nonzero(), changed.any(dim=0).nonzero()
            assert len(rows) and len(cols)
            box = b[:, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert torch.equal(box, torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1).expand_as(box))


def test_planner_explains_what_does_not_run_natively():
    from conveyor.loader.planner import plan_transforms

    def blocker(*transforms, targets=(tv_tensors.BoundingBoxes,)):
        plan = plan_transforms(v2.Compose([v2.ToImage(), *transforms]), targets)
        return plan.blocker, plan.reason

    assert blocker(v2.Grayscale(1))[1].endswith("(only 3 runs natively)")
    name, reason = blocker(v2.ToDtype(torch.float32, scale=True), v2.ColorJitter(0.2))
    assert name.endswith("ColorJitter") and "after ToDtype/Normalize" in reason
    _, reason = blocker(v2.Resize(64), v2.ColorJitter(0.2), v2.CenterCrop(32))
    assert "photometric ops run natively before or after the geometric ones" in reason
    _, reason = blocker(v2.RandomErasing(), v2.Normalize([0.5] * 3, [0.2] * 3))
    assert "after RandomErasing" in reason
    _, reason = blocker(v2.SanitizeBoundingBoxes(labels_getter=None))
    assert "labels_getter" in reason
    _, reason = blocker(v2.SanitizeBoundingBoxes(), targets=())
    assert "without bounding boxes" in reason
    plan = plan_transforms(ssd_like(), (tv_tensors.BoundingBoxes,))
    assert plan.fully_native


# ---- the recipes with their photometric and box ops ----


def full_ssd():
    fill = {tv_tensors.Image: (123, 117, 104), "others": 0}
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomPhotometricDistort(p=0.5),
            v2.RandomZoomOut(fill=fill),
            v2.RandomIoUCrop(),
            v2.RandomHorizontalFlip(p=0.5),
            v2.Resize((96, 96)),
            v2.ToDtype(torch.float32, scale=True),
            v2.SanitizeBoundingBoxes(),
        ]
    )


def full_scale_jitter():
    return v2.Compose(
        [
            v2.ToImage(),
            v2.ScaleJitter((96, 96)),
            v2.RandomCrop(96, pad_if_needed=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(0.4, 0.4, 0.4, 0.1),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            v2.SanitizeBoundingBoxes(),
        ]
    )


def recipe_loader(root, make, workers):
    from conveyor import DataLoader
    from conveyor.collate import detection_collate

    return DataLoader(
        detection(root, make()),
        batch_size=4,
        shuffle=True,
        seed=5,
        num_workers=workers,
        collate_fn=detection_collate,
    )


def flat(batches):
    out = []
    for images, targets in batches:
        out.extend(images if isinstance(images, (list, tuple)) else [images])
        for t in targets:
            out.extend([t["boxes"].as_subclass(torch.Tensor), t["labels"], t["difficult"]])
    return out


@pytest.mark.parametrize("make", [full_ssd, full_scale_jitter], ids=["ssd", "scale_jitter"])
def test_recipe_with_photometric_ops_is_native_deterministic_and_resumes(voc_root, make):
    import warnings

    runs = []
    for workers in (0, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "cannot run natively" warning
            loader = recipe_loader(voc_root, make, workers)
            runs.append(flat(list(loader)))
        assert loader.stats.path == "native"
    assert len(runs[0]) == len(runs[1])
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    for _images, targets in recipe_loader(voc_root, make, 2):
        for t in targets:
            boxes = t["boxes"].as_subclass(torch.Tensor)
            assert len(boxes) == len(t["labels"]) == len(t["difficult"])
            sides = boxes[:, 2:] - boxes[:, :2]
            assert (sides >= 1).all() and (sides.prod(dim=1) >= 1).all()  # sanitized
    first = recipe_loader(voc_root, make, 2)
    iterator = iter(first)
    head = [next(iterator) for _ in range(2)]
    resumed = recipe_loader(voc_root, make, 2)
    resumed.load_state_dict(first.state_dict())
    got = flat(head + list(resumed))
    assert len(got) == len(runs[0]) and all(torch.equal(a, b) for a, b in zip(got, runs[0]))


def test_dense_factor_sweep_is_exact_on_noise():
    """Every value of a noise image through many factors: no rounding case left untested (an
    FMA contraction of a * b + c that torch does not do would show here)."""
    image = np.random.default_rng(11).integers(0, 256, (3, 120, 160), dtype=np.uint8)
    t = torch.from_numpy(image)
    for hue in np.linspace(-0.5, 0.5, 41):
        assert_close(K.adjust_hue(image, float(hue)), F.adjust_hue(t, float(hue)))
    for factor in np.linspace(0.0, 3.0, 31):
        for name in ("adjust_brightness", "adjust_contrast", "adjust_saturation"):
            assert_close(getattr(K, name)(image, float(factor)), getattr(F, name)(t, float(factor)))
