"""Image interpolation modes (bilinear, nearest, nearest-exact, bicubic; antialias on and off)
in every resizing op, against torchvision v2's kernels: the engine's resize equals
``F.resize`` on uint8 images (torch's own uint8 kernels: nearest exactly, bilinear and bicubic
within 1 level, in practice exactly), boxes move as with bilinear and masks are resized
nearest (nearest-exact when that is the mode, as torchvision's resize_mask), on generated and
real VOC images, through the op schema, the planner and the DataLoader."""

import warnings

import numpy as np
import pytest
import torch
import torchvision
from test_ops import assert_close_uint8, chw, photo
from test_ops_recipes import boxes_for, check_against_torchvision, mask_for, real_samples
from torchvision.transforms import v2

from conveyor import DataLoader, _core, datasets
from conveyor.io import read_image
from conveyor.loader import planner as P
from conveyor.loader.engine import run_pipeline

MODES = ["bilinear", "nearest", "nearest-exact", "bicubic"]
SIZES = [
    ((375, 500), (512, 512)),  # upscale
    ((375, 500), (224, 224)),  # downscale
    ((480, 640), (100, 37)),  # strong, anisotropic
    ((50, 60), (512, 300)),
    ((375, 500), (333, 97)),
    ((7, 5), (3, 9)),  # one axis up, one down, tiny
    ((1, 1), (4, 4)),
    ((13, 17), (26, 34)),  # exactly doubled (nearest's special case)
    ((300, 200), (301, 199)),  # near identity: torch's weight precision edge
    ((300, 200), (300, 199)),  # one axis unchanged
]


def tolerance(mode):
    return 0 if mode.startswith("nearest") else 1


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_resize_matches_torchvision_kernel(mode, antialias):
    for index, (size, out) in enumerate(SIZES):
        image = photo(*size, seed=index)
        native, _, _, _ = run_pipeline(
            [{"op": "resize", "size": list(out), "antialias": antialias, "interpolation": mode}],
            image,
        )
        expected = v2.Resize(out, interpolation=v2.InterpolationMode(mode), antialias=antialias)(
            chw(image)
        )
        assert_close_uint8(native, expected, tolerance(mode))


@pytest.mark.parametrize("mode", ["bicubic", "nearest"])
def test_float_output_is_the_uint8_resize_normalised(mode):
    """The fused float write clamps bicubic's overshoot like the uint8 pass (within 1/255)."""
    image = photo(120, 90)
    image[40:60] = 255  # hard edges: bicubic's negative lobes overshoot there
    image[60:80] = 0
    ops = [
        {"op": "resize", "size": [200, 150], "interpolation": mode},
        {"op": "to_dtype", "dtype": "float32", "scale": True},
    ]
    native, _, _, _ = run_pipeline(ops, image)
    expected = v2.Compose(
        [
            v2.Resize((200, 150), interpolation=v2.InterpolationMode(mode)),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )(chw(image))
    assert np.asarray(native).dtype == np.float32
    assert np.abs(np.asarray(native) - expected.numpy()).max() <= 1 / 255 + 1e-6


# Every resizing op with fixed or drawn parameters: the engine's drawn steps replayed with
# torchvision's kernels (test_ops_recipes.check_against_torchvision) give the same image,
# boxes and (nearest) mask.
def resizing_ops(mode, antialias):
    common = {"interpolation": mode, "antialias": antialias}
    return {
        "resize": [_core.Op("resize", size=[61, 47], **common)],
        "resize_shorter_max": [_core.Op("resize", size=50, max_size=70, **common)],
        "random_resized_crop": [_core.Op("random_resized_crop", size=[40, 52], **common)],
        "random_resize": [_core.Op("random_resize", min_size=26, max_size=104, **common)],
        "random_shortest_size": [
            _core.Op("random_shortest_size", min_size=[48, 64, 80], max_size=100, **common)
        ],
        "scale_jitter": [_core.Op("scale_jitter", target_size=[64, 64], **common)],
        "segmentation": [
            _core.Op("random_resize", min_size=26, max_size=104, **common),
            _core.Op("hflip", p=0.5),
            _core.Op("random_crop", size=[48, 48], pad_if_needed=True, fill=0, mask_fill=255),
        ],
    }


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bicubic"])
def test_every_resizing_op_matches_torchvision_on_generated_images(mode, antialias):
    for name, ops in resizing_ops(mode, antialias).items():
        resized = False
        for index in range(6):
            h, w = [(75, 100), (100, 63), (40, 41)][index % 3]
            image = photo(h, w, seed=index)
            steps = check_against_torchvision(
                ops, image, boxes_for(h, w, seed=index), mask_for(h, w, index), index
            )
            resized |= any(step["kind"] == "resize" for step in steps)
        assert resized, f"{name}: the draws never resized"


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bicubic"])
def test_real_voc_images_match_torchvision(realvoc, mode):
    samples = real_samples(realvoc, count=4)
    assert samples
    pipelines = [
        [_core.Op("resize", size=[300, 300], interpolation=mode)],
        [_core.Op("random_shortest_size", min_size=[480, 800], max_size=1000, interpolation=mode)],
        [
            _core.Op("random_resize", min_size=260, max_size=1040, interpolation=mode),
            _core.Op("random_crop", size=[480, 480], pad_if_needed=True, fill=0, mask_fill=255),
        ],
    ]
    for ops in pipelines:
        for index, (image, boxes) in enumerate(samples):
            h, w = image.shape[:2]
            check_against_torchvision(ops, image, boxes, mask_for(h, w, index), index)


def test_schema_lists_the_modes_and_names_a_bad_one():
    schema = {s["name"]: s for s in _core.op_schema()}
    for name in ["resize", "random_resized_crop", "random_resize", "random_shortest_size"]:
        (arg,) = [a for a in schema[name]["args"] if a["name"] == "interpolation"]
        assert arg["choices"] == ["bilinear", "nearest", "nearest-exact", "bicubic"]
    with pytest.raises(ValueError, match="resize.*interpolation.*bilinear, nearest"):
        _core.Op("resize", size=8, interpolation="lanczos")


@pytest.mark.parametrize(
    "transform, expected",
    [
        (v2.Resize(10, interpolation=v2.InterpolationMode.BICUBIC), "bicubic"),
        (v2.Resize(10, interpolation=v2.InterpolationMode.NEAREST_EXACT), "nearest-exact"),
        (v2.RandomResize(10, 20, interpolation=v2.InterpolationMode.NEAREST), "nearest"),
        (v2.RandomShortestSize([8, 9], interpolation=v2.InterpolationMode.BICUBIC), "bicubic"),
        (v2.ScaleJitter((8, 8), interpolation=v2.InterpolationMode.NEAREST), "nearest"),
        (v2.RandomResizedCrop(8, interpolation=v2.InterpolationMode.BICUBIC), "bicubic"),
        (torchvision.transforms.Resize(10, interpolation=3), "bicubic"),  # PIL's int code
        (v2.Resize(10), "bilinear"),
    ],
)
def test_planner_translates_interpolation(transform, expected):
    (op,) = P.describe(transform)
    assert op.to_dict().get("interpolation", "bilinear") == expected


@pytest.mark.parametrize(
    "transform",
    [
        v2.Resize(10, interpolation=v2.InterpolationMode.LANCZOS),
        v2.RandomResize(10, 20, interpolation=v2.InterpolationMode.BOX),
        v2.RandomShortestSize([8], interpolation=v2.InterpolationMode.HAMMING),
    ],
)
def test_planner_names_transform_and_mode_it_cannot_run(transform):
    mode = transform.interpolation.value
    with pytest.raises(P.UnsupportedTransform, match=f"{type(transform).__name__}.*{mode}"):
        P.describe(transform)


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("interpvoc")
    datasets.make_synthetic_voc(root, num_images=6, image_size=(333, 517), seed=4)
    return root


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bicubic"])
def test_dataloader_runs_modes_natively_and_exactly(voc_root, real_voc_tree, mode):
    """Through the planner and the engine (Resize then CenterCrop: windowed resize, region
    decode): torchvision's resize then crop of conveyor's own full decode, exactly; masks as
    torchvision resizes them (nearest, or nearest-exact)."""
    interpolation = v2.InterpolationMode(mode)
    ops = [v2.Resize(200, interpolation=interpolation), v2.CenterCrop((150, 171))]
    for root in [voc_root, real_voc_tree]:
        dataset = datasets.VOCDetection(
            root, image_set="trainval", transform=v2.Compose([v2.ToImage(), *ops])
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "cannot run natively" warning
            loader = DataLoader(
                dataset, batch_size=3, num_workers=2, collate_fn=list, worker_mode="thread"
            )
            images = torch.cat([torch.stack([image for image, _ in batch]) for batch in loader])
        assert loader.stats.path == "native"
        files = [dataset.images[i] for i in range(len(dataset))]
        expected = torch.stack([v2.Compose(ops)(read_image(path, mode="rgb")) for path in files])
        assert torch.equal(images, expected)
    segmentation = datasets.VOCSegmentation(
        voc_root,
        image_set="trainval",
        transforms=v2.Compose([v2.ToImage(), v2.Resize((97, 131), interpolation=interpolation)]),
        target_format="mask",
    )
    loader = DataLoader(segmentation, batch_size=3, num_workers=2)
    masks = torch.cat([batch_masks for _, batch_masks in loader])
    reference = torchvision.datasets.VOCSegmentation(voc_root, image_set="trainval")
    for i in range(len(reference)):
        mask = torchvision.tv_tensors.Mask(torch.from_numpy(np.array(reference[i][1]))[None])
        expected_mask = v2.Resize((97, 131), interpolation=interpolation)(mask)
        assert torch.equal(masks[i].to(torch.uint8).reshape(97, 131), expected_mask[0])
    assert loader.stats.path == "native"


def test_dct_scaled_decode_only_for_antialiased_filters(tmp_path):
    """A DCT-scaled decode (close to, not exactly, the full decode) is chosen for antialiased
    bilinear/bicubic downscales only: nearest modes read full-resolution pixels, exactly."""
    from PIL import Image
    from test_engine import epoch

    from conveyor.loader.engine import Engine

    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(photo(600, 800, i)).save(path, quality=90)
        paths.append(str(path))
    for mode, exact in [("nearest", True), ("nearest-exact", True), ("bicubic", False)]:
        results = []
        for dct in (True, False):
            ops = [{"op": "resize", "size": [70, 90], "interpolation": mode}]
            engine = Engine(ops, paths, dct_scaling=dct)
            results.append(epoch(engine, batch_size=4)[0].images.astype(int))
        difference = np.abs(results[0] - results[1])
        if exact:
            assert difference.max() == 0
        else:
            assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 6
