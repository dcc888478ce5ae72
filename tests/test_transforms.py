"""conveyor.transforms: translation of torchvision v1/v2 pipelines into engine ops."""

import pytest
import torch
import torchvision.transforms as v1
from torchvision import tv_tensors
from torchvision.transforms import v2

from conveyor import transforms as T
from conveyor.loader import planner as P

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def test_issue_pipeline_is_fully_native():
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((512, 512)),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
    plan = P.plan_transforms(tf)
    assert plan.fully_native and plan.to_tensor
    assert [op.to_dict() for op in plan.ops] == [
        {"op": "resize", "size": [512, 512], "max_size": None, "antialias": True},
        {"op": "hflip", "p": 0.5},
        {"op": "to_dtype", "dtype": "float32", "scale": True},
        {"op": "normalize", "mean": MEAN, "std": STD},
    ]


def test_v1_classification_pipeline():
    tf = v1.Compose(
        [
            v1.RandomResizedCrop(224),
            v1.RandomHorizontalFlip(0.25),
            v1.ToTensor(),
            v1.Normalize(MEAN, STD),
        ]
    )
    plan = P.plan_transforms(tf)
    assert plan.fully_native and plan.to_tensor
    assert [op.name for op in plan.ops] == [
        "random_resized_crop",
        "hflip",
        "to_dtype",
        "normalize",
    ]
    assert plan.ops[0].args["size"] == [224, 224] and plan.ops[0].args["scale"] == [0.08, 1.0]
    assert plan.ops[1].args["p"] == 0.25


@pytest.mark.parametrize(
    "transform, expected",
    [
        (v2.Resize(256), {"op": "resize", "size": 256, "max_size": None, "antialias": True}),
        (
            v1.Resize([300], max_size=400),
            {"op": "resize", "size": 300, "max_size": 400, "antialias": True},
        ),
        (v2.CenterCrop(224), {"op": "center_crop", "size": [224, 224]}),
        (v1.CenterCrop((100, 120)), {"op": "center_crop", "size": [100, 120]}),
        (
            v2.Pad([1, 2], fill=3),
            {"op": "pad", "padding": [1, 2], "padding_mode": "constant", "fill": 3, "mask_fill": 3},
        ),
        (
            v1.Pad(4),
            {"op": "pad", "padding": 4, "padding_mode": "constant", "fill": 0, "mask_fill": 0},
        ),
        (
            v2.Pad(3, fill=(1, 2, 3)),
            {"op": "pad", "padding": 3, "padding_mode": "constant", "fill": [1.0, 2.0, 3.0]},
        ),
        (
            v2.RandomCrop(
                480, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: 255}
            ),
            {
                "op": "random_crop",
                "size": [480, 480],
                "padding": None,
                "pad_if_needed": True,
                "padding_mode": "constant",
                "fill": 0,
                "mask_fill": 255,
            },
        ),
        (
            v2.RandomCrop(32, padding=4),
            {
                "op": "random_crop",
                "size": [32, 32],
                "padding": [4, 4, 4, 4],
                "pad_if_needed": False,
                "padding_mode": "constant",
                "fill": 0,
                "mask_fill": 0,
            },
        ),
        (
            v1.RandomCrop(32, pad_if_needed=True),
            {
                "op": "random_crop",
                "size": [32, 32],
                "padding": None,
                "pad_if_needed": True,
                "padding_mode": "constant",
                "fill": 0,
                "mask_fill": 0,
            },
        ),
        (v2.ToDtype(torch.float16), {"op": "to_dtype", "dtype": "float16", "scale": False}),
        (
            v1.Pad([1, 2], padding_mode="reflect"),
            {"op": "pad", "padding": [1, 2], "padding_mode": "reflect", "fill": 0, "mask_fill": 0},
        ),
        (
            v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
            {"op": "to_dtype", "dtype": "float32", "scale": True},
        ),
        (
            v1.ConvertImageDtype(torch.float32),
            {"op": "to_dtype", "dtype": "float32", "scale": True},
        ),
    ],
)
def test_single_transform_descriptors(transform, expected):
    assert [op.to_dict() for op in P.describe(transform)] == [expected]


@pytest.mark.parametrize(
    "transform, reason",
    [
        (v2.Resize(10, interpolation=v2.InterpolationMode.LANCZOS), "lanczos"),
        (v2.RandomResize(10, 20, interpolation=v2.InterpolationMode.BOX), "interpolation"),
        (v2.Pad(3, fill={tv_tensors.Mask: (1, 2, 3)}), "mask fill"),
        (v2.ToDtype(torch.float64), "float64"),
        (v1.ColorJitter(0.3), "no native equivalent"),
    ],
)
def test_unsupported_settings_are_named(transform, reason):
    with pytest.raises(P.UnsupportedTransform, match=reason):
        P.describe(transform)


def test_unknown_transform_splits_pipeline_and_is_named():
    jitter = v2.RandomInvert()
    tf = v2.Compose([v2.ToImage(), v2.Resize(64), jitter, v2.ToDtype(torch.float32, scale=True)])
    plan = P.plan_transforms(tf)
    assert plan.blocker == "torchvision.transforms.v2.RandomInvert"
    assert plan.to_tensor and [op.name for op in plan.ops] == ["resize"]
    assert plan.tail[0] is jitter and len(plan.tail) == 2
    assert not plan.fully_native


def test_lambda_and_subclass_are_not_recognised():
    class MyResize(v2.Resize):
        pass

    assert P.plan_transforms(v2.Compose([v2.ToImage(), MyResize(8)])).blocker.endswith("MyResize")
    assert P.plan_transforms(v1.Lambda(lambda x: x)).blocker == "torchvision.transforms.Lambda"
    assert P.plan_transforms(lambda x: x).blocker.startswith("a lambda")


def test_geometry_after_dtype_ends_native_prefix():
    tf = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Resize(32)])
    plan = P.plan_transforms(tf)
    assert [op.name for op in plan.ops] == ["to_dtype"]
    assert "after ToDtype" in plan.reason


def test_nested_compose_is_flattened_and_pil_only_pipeline_has_no_tensor():
    plan = P.plan_transforms(v1.Compose([v1.Compose([v1.Resize(8)]), v1.CenterCrop(8)]))
    assert plan.fully_native and not plan.to_tensor
    assert P.plan_transforms(None).fully_native


def test_conveyor_classes_translate_and_behave_like_v2():
    tf = T.Compose(
        [
            T.ToImage(),
            T.Resize((40, 30)),
            T.RandomHorizontalFlip(0.0),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(MEAN, STD),
        ]
    )
    assert P.plan_transforms(tf).fully_native
    image = torch.randint(0, 256, (3, 64, 48), dtype=torch.uint8)
    reference = v2.Compose(
        [v2.Resize((40, 30)), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    )
    assert torch.equal(tf(image), reference(image))


def test_conveyor_classes_refuse_non_native_settings():
    with pytest.raises(ValueError, match="conveyor.transforms.Pad"):
        T.Pad(2, fill={tv_tensors.Mask: (1, 2, 3)})
    with pytest.raises(ValueError, match="float64"):
        T.ToDtype(torch.float64)


def test_per_type_to_dtype_plans_images_and_masks():
    from conveyor.loader.planner import plan_transforms

    plan = plan_transforms(
        v2.Compose(
            [
                v2.ToImage(),
                v2.Resize((8, 8)),
                v2.ToDtype(
                    {tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None},
                    scale=True,
                ),
            ]
        )
    )
    assert plan.fully_native and plan.mask_dtype == torch.int64
    assert plan.ops[-1].to_dict() == {"op": "to_dtype", "dtype": "float32", "scale": True}
    masks_only = plan_transforms(v2.ToDtype({tv_tensors.Mask: torch.float32, "others": None}))
    assert (
        masks_only.fully_native and masks_only.ops == [] and masks_only.mask_dtype == torch.float32
    )
    plain = plan_transforms(v2.ToDtype(torch.float16, scale=True))
    assert plain.mask_dtype is None  # a plain dtype converts images only (torchvision's rule)
    boxes = plan_transforms(
        v2.ToDtype(
            {
                tv_tensors.Image: torch.float32,
                tv_tensors.BoundingBoxes: torch.float64,
                "others": None,
            }
        )
    )
    assert boxes.blocker == "torchvision.transforms.v2.ToDtype" and "per-type" in boxes.reason
    others = plan_transforms(v2.ToDtype({tv_tensors.Image: torch.float32, "others": torch.int64}))
    assert others.blocker is not None


def test_readme_table_is_generated_from_the_schema_and_translators():
    """The README's list of native transforms is the planner's generated table, unchanged."""
    import pathlib

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    begin, end = "<!-- native-transforms:begin -->\n", "<!-- native-transforms:end -->"
    assert begin in readme and end in readme, "README lacks the native transforms table"
    table = readme.split(begin, 1)[1].split(end, 1)[0]
    assert table == P.native_transforms_markdown(), (
        "README table is stale: regenerate with "
        "`PYTHONPATH=python python -m conveyor.loader.planner`"
    )


def test_every_schema_op_is_emitted_by_a_translator_and_documented():
    from conveyor import _core

    table = P.native_transforms_markdown()
    for op in _core.op_schema():
        assert f"| `{op['name']}` |" in table
        assert op["doc"] and all(a["doc"] for a in op["args"])


@pytest.mark.parametrize(
    "name, args, message",
    [
        ("resize", {}, "resize needs size"),
        ("resize", {"size": [1, 2, 3]}, "size must be an int or"),
        ("resize", {"size": 10, "antialias": 1}, "antialias must be a bool"),
        ("hflip", {"p": 2.0}, "p must be in"),
        ("hflip", {"q": 0.5}, "unknown argument 'q'"),
        ("pad", {"padding": [1, 2, 3]}, "1, 2 or 4 ints"),
        ("pad", {"padding": 1, "fill": 300}, r"\[0, 255\]"),
        ("normalize", {"mean": [0.5], "std": [0.0]}, "non-zero"),
        ("to_dtype", {"dtype": "float64"}, "float64"),
        ("warp", {}, "unknown op 'warp'"),
    ],
)
def test_schema_rejects_bad_ops_by_name_and_argument(name, args, message):
    from conveyor import _core

    with pytest.raises(ValueError, match=message):
        _core.Op(name, **args)
