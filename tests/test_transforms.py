"""conveyor.transforms: translation of torchvision v1/v2 pipelines into engine op descriptors."""

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
    assert plan.ops == [
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
    assert [op["op"] for op in plan.ops] == [
        "random_resized_crop",
        "hflip",
        "to_dtype",
        "normalize",
    ]
    assert plan.ops[0]["size"] == [224, 224] and plan.ops[0]["scale"] == [0.08, 1.0]
    assert plan.ops[1]["p"] == 0.25


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
        (v2.Pad([1, 2], fill=3), {"op": "pad", "padding": [1, 2], "fill": 3}),
        (v1.Pad(4), {"op": "pad", "padding": 4, "fill": 0}),
        (
            v2.RandomCrop(32, padding=4),
            {
                "op": "random_crop",
                "size": [32, 32],
                "padding": [4, 4, 4, 4],
                "pad_if_needed": False,
                "fill": 0,
                "padding_mode": "constant",
            },
        ),
        (
            v1.RandomCrop(32, pad_if_needed=True),
            {
                "op": "random_crop",
                "size": [32, 32],
                "padding": None,
                "pad_if_needed": True,
                "fill": 0,
                "padding_mode": "constant",
            },
        ),
        (v2.ToDtype(torch.float16), {"op": "to_dtype", "dtype": "float16", "scale": False}),
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
    assert P.describe(transform) == [expected]


@pytest.mark.parametrize(
    "transform, reason",
    [
        (v2.Resize(10, interpolation=v2.InterpolationMode.BICUBIC), "bicubic"),
        (v1.Pad(3, padding_mode="reflect"), "reflect"),
        (v2.Pad(3, fill=(1, 2, 3)), "fill"),
        (v2.ToDtype(torch.float64), "float64"),
        (v2.ColorJitter(0.3), "no native equivalent"),
    ],
)
def test_unsupported_settings_are_named(transform, reason):
    with pytest.raises(P.UnsupportedTransform, match=reason):
        P.describe(transform)


def test_unknown_transform_splits_pipeline_and_is_named():
    jitter = v2.ColorJitter(0.2)
    tf = v2.Compose([v2.ToImage(), v2.Resize(64), jitter, v2.ToDtype(torch.float32, scale=True)])
    plan = P.plan_transforms(tf)
    assert plan.blocker == "torchvision.transforms.v2.ColorJitter"
    assert plan.to_tensor and [op["op"] for op in plan.ops] == ["resize"]
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
    assert [op["op"] for op in plan.ops] == ["to_dtype"]
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
        T.Pad(2, fill=(1, 2, 3))
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
    assert plan.ops[-1] == {"op": "to_dtype", "dtype": "float32", "scale": True}
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
