"""VOCFolder: every layout annotation tools write (generated trees and the real files of
../shared/data/realvoc), classes, what tools get wrong, bad files, the native path against
dataset[i], torchvision compatibility, and VOCDataModule / `conveyor fit --data_dir`."""

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from folder_trees import CLASSES, annotation_xml, image_bytes, make_tree, write_sample
from torchvision import tv_tensors
from torchvision.transforms import v2

import conveyor
from conveyor.collate import detection_collate
from conveyor.datasets import VOCDetection, VOCFolder, VOCSegmentation, make_synthetic_voc
from conveyor.errors import AnnotationError
from conveyor.loader.native_path import native_setup

LAYOUTS = ["vocdevkit", "cvat", "labelme", "roboflow", "labelimg", "labelimg-beside"]


def quiet(*args, **kwargs) -> VOCFolder:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VOCFolder(*args, **kwargs)


def native_batches(dataset, **kwargs) -> list:
    loader = conveyor.DataLoader(dataset, batch_size=3, collate_fn=detection_collate, **kwargs)
    assert native_setup(loader) is not None, "expected the native path"
    samples = []
    for images, targets in loader:
        samples += list(zip(images, targets))
    return samples


def assert_native_equals_getitem(dataset, **kwargs) -> None:
    samples = native_batches(dataset, **kwargs)
    assert len(samples) == len(dataset)
    for index, (image, target) in enumerate(samples):
        expected_image, expected = dataset[index]
        torch.testing.assert_close(image, expected_image.as_subclass(torch.Tensor))
        torch.testing.assert_close(
            target["boxes"].as_subclass(torch.Tensor), expected["boxes"].as_subclass(torch.Tensor)
        )
        assert target["labels"].tolist() == expected["labels"].tolist()


# -- layouts --------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_is_detected_and_loads(tmp_path, layout):
    root = make_tree(tmp_path, layout, count=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean tree: nothing to report
        dataset = VOCFolder(root)
    assert dataset.layout == layout.replace("-beside", "")
    assert len(dataset) == 6 and dataset.classes == CLASSES
    assert dataset.num_classes == 4
    image, target = dataset[0]
    assert isinstance(image, tv_tensors.Image) and image.shape == (3, 72, 96)
    assert isinstance(target["boxes"], tv_tensors.BoundingBoxes)
    assert target["boxes"].canvas_size == (72, 96)
    assert target["labels"].dtype == torch.int64 and target["labels"].min() >= 1
    assert_native_equals_getitem(dataset)


@pytest.mark.parametrize("layout", ["vocdevkit", "cvat", "labelme"])
def test_split_files(tmp_path, layout):
    root = make_tree(tmp_path, layout, count=6)
    train, val = quiet(root, "train"), quiet(root, "val")
    assert train.ids == ["img_000", "img_001", "img_002", "img_003"]
    assert val.ids == ["img_004", "img_005"]
    assert set(train.splits) == {"train", "val"}
    with pytest.raises(ValueError, match="no split file for 'test'"):
        VOCFolder(root, "test")


def test_roboflow_split_folders_and_valid_alias(tmp_path):
    root = make_tree(tmp_path, "roboflow", count=6)
    assert len(quiet(root, "train")) == 3
    assert quiet(root, "val").ids == quiet(root, "valid").ids == ["img_003", "img_004"]
    assert len(quiet(root, "test")) == 1 and len(quiet(root)) == 6
    # classes come from the whole folder: every split labels alike
    assert quiet(root, "test").classes == quiet(root, "train").classes == CLASSES


def test_class_files(tmp_path):
    cvat = quiet(make_tree(tmp_path / "cvat", "cvat"))
    assert cvat.classes == CLASSES and cvat.classes_source.endswith("labelmap.txt")
    labelme = quiet(make_tree(tmp_path / "labelme", "labelme"))  # __ignore__, _background_ out
    assert labelme.classes == CLASSES and labelme.classes_source.endswith("class_names.txt")
    root = make_tree(tmp_path / "plain", "labelimg")
    (root / "classes.txt").write_text("zebra\nraccoon\ntraffic sign\n")
    dataset = quiet(root)
    assert dataset.classes == ("zebra", "raccoon", "traffic sign")
    names = [dataset.classes[label - 1] for label in dataset[0][1]["labels"].tolist()]
    assert names == dataset.native_annotations.names[dataset.native_annotations.rows(0)]


def test_images_any_extension_and_case_and_bmp(tmp_path):
    root = make_tree(tmp_path, "labelimg-beside", count=4)
    dataset = quiet(root)
    assert sorted(Path(p).suffix for p in dataset.images) == [".JPG", ".jpeg", ".jpg", ".png"]
    write_sample(root, root, "img_bmp", 9, ext=".bmp")
    dataset = quiet(root)
    assert not dataset.natively_decodable  # the engine decodes JPEG and PNG only
    loader = conveyor.DataLoader(dataset, batch_size=2, collate_fn=detection_collate)
    assert native_setup(loader) is None
    images, _ = next(iter(conveyor.DataLoader(dataset, batch_size=5, collate_fn=detection_collate)))
    bmp = dataset.ids.index("img_bmp")
    assert images[bmp].shape == (3, 72, 96)


def test_image_found_by_filename_when_the_stem_differs(tmp_path):
    root = make_tree(tmp_path, "labelimg", count=2)
    image = root / "images" / "img_000.jpg"
    image.rename(root / "images" / "photo.jpg")
    xml = root / "annotations" / "img_000.xml"
    xml.write_text(xml.read_text().replace("img_000.jpg", "photo"))  # no extension, as some write
    dataset = quiet(root)
    assert dataset.images[0].endswith("photo.jpg") and not dataset.problems


def test_unpaired_files_are_reported_not_paired(tmp_path):
    root = make_tree(tmp_path, "labelimg", count=4)
    (root / "images" / "img_000.jpg").unlink()
    (root / "annotations" / "img_001.xml").unlink()
    with pytest.warns(UserWarning, match="has no image"):
        dataset = VOCFolder(root)
    assert dataset.ids == ["img_002", "img_003"]
    kinds = sorted(problem.kind for problem in dataset.problems)
    assert kinds == ["orphan-annotation", "orphan-image"]


def test_missing_or_unknown_root(tmp_path):
    with pytest.raises(FileNotFoundError):
        VOCFolder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no VOC-format data"):
        VOCFolder(tmp_path / "empty")


# -- classes --------------------------------------------------------------------------------


def test_explicit_classes_unknown_raises_naming_the_file(tmp_path):
    root = make_tree(tmp_path, "labelimg", count=6)
    with pytest.raises(ValueError, match=r"img_\d+\.xml: object of class 'zebra'"):
        VOCFolder(root, classes=["raccoon", "traffic sign"])


def test_unknown_classes_skip_counts(tmp_path):
    root = make_tree(tmp_path, "labelimg", count=6)
    with pytest.warns(UserWarning, match="unknown classes skipped"):
        dataset = VOCFolder(root, classes=["raccoon", "traffic sign"], unknown_classes="skip")
    everything = quiet(root)
    zebras = everything.native_annotations.names.count("zebra")
    assert zebras > 0 and dataset.report.unknown_names == {"zebra": zebras}
    assert (
        dataset.native_annotations.num_objects == everything.native_annotations.num_objects - zebras
    )
    assert set(dataset.native_annotations.labels.tolist()) <= {1, 2}


def test_inferred_classes_are_sorted_and_deterministic(tmp_path):
    root = make_tree(tmp_path, "labelimg", count=8)
    dataset = quiet(root, ids=["img_005", "img_001"])
    assert dataset.classes == tuple(sorted(CLASSES)) and dataset.classes_source == "annotations"
    assert dataset.ids == ["img_005", "img_001"]


# -- what tools write -----------------------------------------------------------------------


def _write(root: Path, stem: str, xml: str, size=(96, 72)) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "images" / f"{stem}.jpg").write_bytes(image_bytes(*size, seed=len(stem)))
    (root / "annotations" / f"{stem}.xml").write_text(xml)


def test_sizes_missing_zero_or_wrong_use_the_image(tmp_path):
    _write(tmp_path, "a", annotation_xml("a.jpg", None, [("cat", (1, 2, 30, 40))]))
    _write(tmp_path, "b", annotation_xml("b.jpg", (0, 0), [("cat", (1, 2, 30, 40))]))
    _write(tmp_path, "c", annotation_xml("c.jpg", (640, 480), [("cat", (1, 2, 30, 40))]))
    with pytest.warns(UserWarning, match="declare a size other than the image"):
        dataset = VOCFolder(tmp_path)
    assert dataset.native_annotations.widths.tolist() == [96, 96, 96]
    assert dataset.native_annotations.heights.tolist() == [72, 72, 72]
    assert [Path(p).name for p in dataset.report.size_from_image] == ["a.xml", "b.xml"]
    assert dataset.report.size_mismatch == [
        (str(tmp_path / "annotations" / "c.xml"), (640, 480), (96, 72))
    ]


def test_missing_difficult_float_coordinates_clamped_and_dropped_boxes(tmp_path):
    objects = [
        ("cat", (1.5, 2.25, 30.75, 40.5)),  # floats kept
        ("cat", (-5, 10, 120, 90)),  # past the edge: clamped to 96x72
        ("dog", (50, 10, 20, 40)),  # inverted: dropped
        ("dog", (10, 10, 10, 40)),  # zero width: dropped
    ]
    _write(tmp_path, "a", annotation_xml("a.jpg", (96, 72), objects, difficult=False))
    with pytest.warns(UserWarning, match="2 box\\(es\\) dropped"):
        dataset = VOCFolder(tmp_path)
    _, target = dataset[0]
    assert target["boxes"].tolist() == [[1.5, 2.25, 30.75, 40.5], [0.0, 10.0, 96.0, 72.0]]
    assert target["difficult"].tolist() == [False, False]
    assert dataset.report.clamped_boxes == 1
    assert [why for _, _, why in dataset.report.dropped_boxes] == ["inverted", "zero-area"]
    assert dataset.classes == ("cat", "dog")  # the dropped boxes' class is still a class
    assert_native_equals_getitem(dataset)


def test_inverted_box_native_path_agrees_with_getitem_in_voc_detection(tmp_path):
    make_synthetic_voc(tmp_path, num_images=4, image_size=(64, 48), seed=1)
    root = tmp_path
    xml = root / "VOCdevkit" / "VOC2012" / "Annotations"
    first = sorted(xml.iterdir())[0]
    text = first.read_text()
    start = text.index("<xmin>") + len("<xmin>")
    end = text.index("</xmin>")
    first.write_text(text[:start] + "999" + text[end:])  # xmin past xmax: inverted
    with pytest.warns(UserWarning, match="inverted"):
        dataset = VOCDetection(root, image_set="train", target_format="boxes")
    assert len(dataset.dropped_boxes) == 1 and dataset.dropped_boxes[0][2] == "inverted"
    assert_native_equals_getitem(dataset)
    with pytest.warns(UserWarning, match="inverted"):
        resize = VOCDetection(
            root, image_set="train", target_format="boxes", transforms=v2.Resize((32, 32))
        )
    loader = conveyor.DataLoader(resize, batch_size=2, collate_fn=detection_collate)
    native = [t["labels"].tolist() for _, targets in loader for t in targets]
    assert native == [resize[i][1]["labels"].tolist() for i in range(len(resize))]


def test_malformed_xml_does_not_stop_indexing_and_on_error_skip_skips_it(tmp_path):
    root = make_tree(tmp_path, "labelimg", count=5)
    (root / "annotations" / "img_001.xml").write_text("<annotation><object><name>x</name>")
    (root / "annotations" / "img_003.xml").write_bytes(b"\x00not xml")
    with pytest.warns(UserWarning, match="2 unreadable or malformed annotation"):
        dataset = VOCFolder(root)
    assert len(dataset) == 5 and sorted(dataset.report.bad_files) == [1, 3]
    assert not dataset.report.size_from_image  # bad files are reported once, as bad
    with pytest.raises(AnnotationError, match=r"img_001\.xml:1:"):
        dataset[1]
    for num_workers in (0, 2):  # the Python path and the native path
        loader = conveyor.DataLoader(
            dataset,
            batch_size=2,
            collate_fn=detection_collate,
            on_error="skip",
            num_workers=num_workers,
        )
        ids = [t["image_id"] for _, targets in loader for t in targets]
        assert ids == [0, 2, 4]
        assert sorted(index for index, _ in loader.stats.skipped) == [1, 3]
    loader = conveyor.DataLoader(dataset, batch_size=2, collate_fn=detection_collate)
    with pytest.raises(AnnotationError, match="img_001"):
        list(loader)


# -- native path: transforms, determinism, resume -------------------------------------------


def test_native_path_with_transforms_matches_getitem_and_is_deterministic(tmp_path):
    root = make_tree(tmp_path, "cvat", count=8)
    transforms = v2.Compose([v2.RandomHorizontalFlip(1.0), v2.Resize((48, 64))])
    dataset = quiet(root, "train", transforms=transforms)
    loader = conveyor.DataLoader(dataset, batch_size=2, collate_fn=detection_collate)
    assert native_setup(loader) is not None
    for images, targets in loader:
        for image, target in zip(images, targets):
            _, expected = dataset[target["image_id"]]
            torch.testing.assert_close(
                target["boxes"].as_subclass(torch.Tensor),
                expected["boxes"].as_subclass(torch.Tensor),
            )
            assert image.shape == (3, 48, 64)

    def epoch(seed):
        shuffled = conveyor.DataLoader(
            dataset, batch_size=2, shuffle=True, seed=seed, collate_fn=detection_collate
        )
        return [t["image_id"] for _, targets in shuffled for t in targets]

    assert epoch(3) == epoch(3) and sorted(epoch(3)) == list(range(len(dataset)))


def test_segmentation_folder_native_equals_getitem(tmp_path):
    root = make_tree(tmp_path, "labelme", count=6)
    dataset = quiet(root, "train", task="segmentation")
    assert dataset.classes == CLASSES and len(dataset) == 4
    image, mask = dataset[0]
    assert isinstance(mask, tv_tensors.Mask) and mask.shape == (1, 72, 96)
    assert set(mask.unique().tolist()) <= {0, 1, 2, 3, 255}
    loader = conveyor.DataLoader(dataset, batch_size=2)
    assert native_setup(loader) is not None
    images, masks = [], []
    for batch_images, batch_masks in loader:
        images += list(batch_images)
        masks += list(batch_masks)
    for i in range(len(dataset)):
        torch.testing.assert_close(images[i], dataset[i][0].as_subclass(torch.Tensor))
        torch.testing.assert_close(masks[i], dataset[i][1].as_subclass(torch.Tensor))


# -- torchvision compatibility --------------------------------------------------------------


def test_conveyor_voc_datasets_are_torchvision_instances_and_wrap(tmp_path):
    make_synthetic_voc(tmp_path, num_images=4, image_size=(64, 48), seed=2)
    root = tmp_path
    ours = VOCDetection(root, image_set="train")
    theirs = torchvision.datasets.VOCDetection(root, image_set="train")
    assert isinstance(ours, torchvision.datasets.VOCDetection)
    assert isinstance(
        VOCSegmentation(root, image_set="train"), torchvision.datasets.VOCSegmentation
    )
    wrapped_ours = torchvision.datasets.wrap_dataset_for_transforms_v2(ours)
    wrapped_theirs = torchvision.datasets.wrap_dataset_for_transforms_v2(theirs)
    for i in range(len(ours)):
        (_, a), (_, b) = wrapped_ours[i], wrapped_theirs[i]
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["labels"], b["labels"])
    typed = VOCDetection(root, image_set="train", target_format="boxes")
    image, target = torchvision.datasets.wrap_dataset_for_transforms_v2(typed)[0]
    assert set(target) == {"boxes", "labels", "difficult", "image_id"}
    seg = torchvision.datasets.wrap_dataset_for_transforms_v2(
        VOCSegmentation(root, image_set="train")
    )
    assert isinstance(seg[0][1], tv_tensors.Mask)


def test_voc_folder_wraps_with_its_own_classes(tmp_path):
    root = make_tree(tmp_path, "cvat", count=3)
    dataset = quiet(root, target_format="dict")
    image, target = torchvision.datasets.wrap_dataset_for_transforms_v2(dataset)[0]
    typed = quiet(root)[0][1]
    assert torch.equal(target["labels"], typed["labels"])
    assert torch.equal(
        target["boxes"].as_subclass(torch.Tensor), typed["boxes"].as_subclass(torch.Tensor)
    )


# -- real files ------------------------------------------------------------------------------

REAL = {
    "labelme-bbox": ("wkentaro__labelme/examples/bbox_detection/data_dataset_voc", "labelme"),
    "roboflow": ("openvinotoolkit__datumaro/tests/assets/roboflow_dataset/voc", "roboflow"),
    "raccoon": ("datitran__raccoon_dataset", "labelimg"),
    "robosub": ("beaverauv__robosub_transdec_dataset", "labelimg"),
    "ship-vocdevkit": ("Lemon-L7__efficient-pytorch-ship", "vocdevkit"),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_trees(realvoc, tmp_path, name):
    source, layout = REAL[name]
    root = tmp_path / name
    shutil.copytree(realvoc / source, root)
    dataset = quiet(root)
    assert dataset.layout == layout and len(dataset) >= 2
    assert not dataset.report.bad_files
    for i in range(len(dataset)):
        image, target = dataset[i]
        names = dataset.native_annotations.names[dataset.native_annotations.rows(i)]
        assert len(target["labels"]) <= len(names)
        assert (target["boxes"][:, 2] <= image.shape[-1]).all()
    assert_native_equals_getitem(dataset)


def test_real_labelme_classes_and_segmentation(realvoc, tmp_path):
    det = tmp_path / "det"
    shutil.copytree(realvoc / REAL["labelme-bbox"][0], det)
    dataset = quiet(det)
    assert dataset.classes[0] == "aeroplane" and "potted plant" in dataset.classes
    assert len(dataset.classes) == 20
    seg = tmp_path / "seg"
    shutil.copytree(
        realvoc / "wkentaro__labelme/examples/semantic_segmentation/data_dataset_voc", seg
    )
    masks = quiet(seg, task="segmentation")
    assert len(masks) == 3 and masks.layout == "labelme"
    _, mask = masks[0]
    assert int(mask.max()) <= 20 or 255 in mask.unique().tolist()


# -- training ----------------------------------------------------------------------------------


def test_datamodule_takes_classes_from_the_folder(tmp_path):
    from conveyor.datamodules import VOCDataModule

    root = make_tree(tmp_path / "data", "roboflow", count=9)
    module = VOCDataModule(data_dir=str(root), task="detection", image_size=64, batch_size=2)
    assert module.classes == CLASSES and module.num_classes == 4
    module.setup("fit")
    assert len(module.datasets["train"]) == 4 and len(module.datasets["val"]) == 4
    images, targets = next(iter(module.train_dataloader()))
    assert len(images) == 2 and images[0].shape == (3, 64, 64)
    assert targets[0]["labels"].max() <= 3
    custom = VOCDataModule(data_dir=str(root), classes="zebra,raccoon,traffic sign")
    assert custom.classes == ("zebra", "raccoon", "traffic sign")

    flat = make_tree(tmp_path / "flat", "labelimg", count=10)  # no splits: a held-out share
    module = VOCDataModule(data_dir=str(flat), task="detection", val_fraction=0.3, seed=1)
    module.setup("fit")
    train, val = module.datasets["train"].ids, module.datasets["val"].ids
    assert len(val) == 3 and len(train) == 7 and not set(train) & set(val)


def test_conveyor_fit_on_a_custom_class_folder_leaves_a_checkpoint(tmp_path, capsys):
    from conveyor.cli import main

    root = make_tree(tmp_path / "data", "labelimg", count=8)
    common = ["--data_dir", str(root), "--task", "detection", "--default_root_dir", str(tmp_path)]
    code = main(
        [
            "fit",
            *common,
            "--max_steps",
            "2",
            "--batch_size",
            "2",
            "--image_size",
            "64",
            "--limit_val_batches",
            "1",
            "--num_workers",
            "0",
            "--enable_progress_bar",
            "false",
        ]
    )
    assert code == 0
    checkpoints = list(tmp_path.glob("lightning_logs/version_*/checkpoints/*.ckpt"))
    assert len(checkpoints) == 1
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=False)
    assert state["hyper_parameters"]["num_classes"] == 4
    assert state["hyper_parameters"]["class_names"] == ",".join(CLASSES)
    capsys.readouterr()
    assert (
        main(["test", *common, "--limit_test_batches", "1", "--enable_progress_bar", "false"]) == 0
    )
    out = capsys.readouterr().out
    assert "test_mAP" in out
    for name in CLASSES:
        if f"test_AP/{name}" not in out:
            assert any(f"test_AP/{n}" in out for n in CLASSES)  # classes present in the split
    assert not any(f"test_AP/{n}" in out for n in ("aeroplane", "class_1"))


def test_voc_folder_numpy_arrays_are_consistent(tmp_path):
    dataset = quiet(make_tree(tmp_path, "labelimg", count=5))
    annotations = dataset.native_annotations
    assert annotations.offsets[-1] == len(annotations.boxes) == len(annotations.labels)
    assert annotations.boxes.dtype == np.float32 and annotations.labels.dtype == np.int64


def test_vocdevkit_tree_reads_like_voc_detection(tmp_path):
    make_synthetic_voc(tmp_path, num_images=6, image_size=(64, 48), seed=4)
    folder = quiet(tmp_path, "train")
    from conveyor.voc import VOC_CLASSES

    assert folder.classes == VOC_CLASSES and folder.layout == "vocdevkit"
    voc = VOCDetection(tmp_path, image_set="train", target_format="boxes")
    assert folder.ids == voc.ids
    for i in range(len(voc)):
        (a_image, a), (b_image, b) = folder[i], voc[i]
        assert torch.equal(a_image, b_image)
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["labels"], b["labels"])


def test_native_resume_mid_epoch_with_random_transforms(tmp_path):
    dataset = quiet(
        make_tree(tmp_path, "roboflow", count=10),
        transforms=v2.Compose([v2.RandomHorizontalFlip(), v2.Resize((40, 40))]),
    )

    def make():
        return conveyor.DataLoader(
            dataset,
            batch_size=2,
            shuffle=True,
            seed=5,
            collate_fn=detection_collate,
            num_workers=2,
        )

    def flat(batches):
        return [
            (t["image_id"], t["boxes"].tolist(), image.sum().item())
            for images, targets in batches
            for image, t in zip(images, targets)
        ]

    reference = make()
    assert native_setup(reference) is not None
    expected = flat(list(reference))
    loader = make()
    iterator = iter(loader)
    head = [next(iterator) for _ in range(2)]
    state = loader.state_dict()
    del iterator
    resumed = make()
    resumed.load_state_dict(state)
    assert flat(head) + flat(list(resumed)) == expected


def test_class_file_missing_a_name_skips_and_counts_its_objects(tmp_path):
    root = make_tree(tmp_path, "labelimg", count=6)
    (root / "classes.txt").write_text("raccoon\ntraffic sign\n")
    with pytest.warns(UserWarning, match="unknown classes skipped: 'zebra'"):
        dataset = VOCFolder(root)
    assert dataset.classes == ("raccoon", "traffic sign") and dataset.report.unknown_names["zebra"]


def test_empty_selection_and_pickling(tmp_path):
    import pickle

    root = make_tree(tmp_path, "labelimg", count=4)
    empty = quiet(root, ids=[])
    assert len(empty) == 0 and empty.classes == CLASSES
    assert list(conveyor.DataLoader(empty, batch_size=2, collate_fn=detection_collate)) == []
    (root / "annotations" / "img_001.xml").write_text("<a>")
    dataset = quiet(root)
    copy = pickle.loads(pickle.dumps(dataset))  # worker processes get a copy
    assert list(copy.report.bad_files) == [1] and copy.classes == dataset.classes
    with pytest.raises(AnnotationError):
        copy[1]


def test_vocdevkit_folder_itself_and_several_years(tmp_path):
    root = make_tree(tmp_path, "vocdevkit", count=3)
    assert len(quiet(root / "VOCdevkit")) == 3  # the VOCdevkit folder itself
    shutil.copytree(root / "VOCdevkit" / "VOC2012", root / "VOCdevkit" / "VOC2007")
    with pytest.raises(ValueError, match="holds 2 folders"):
        VOCFolder(root)
    assert len(quiet(root / "VOCdevkit" / "VOC2007")) == 3


def test_annotations_without_images_are_reported(tmp_path):
    root = make_tree(tmp_path, "cvat", count=3)
    shutil.rmtree(root / "JPEGImages")
    with pytest.warns(UserWarning, match="has no image"):
        dataset = VOCFolder(root)
    assert len(dataset) == 0 and dataset.layout == "cvat"
    assert [p.kind for p in dataset.problems] == ["orphan-annotation"] * 3


def test_conveyor_fit_and_test_segmentation_report_per_class_iou_by_name(tmp_path, capsys):
    from conveyor.cli import main

    root = make_tree(tmp_path / "data", "cvat", count=6)
    common = [
        "--data_dir",
        str(root),
        "--task",
        "segmentation",
        "--default_root_dir",
        str(tmp_path),
    ]
    quick = ["--batch_size", "2", "--image_size", "64", "--num_workers", "0"]
    code = main(
        ["fit", *common, *quick, "--max_steps", "2", "--limit_val_batches", "1"]
        + ["--enable_progress_bar", "false"]
    )
    assert code == 0
    assert len(list(tmp_path.glob("lightning_logs/version_*/checkpoints/*.ckpt"))) == 1
    capsys.readouterr()
    assert main(["test", *common, *quick, "--enable_progress_bar", "false"]) == 0
    out = capsys.readouterr().out
    assert "test_mIoU" in out
    assert any(f"test_IoU/{name}" in out for name in CLASSES)
    assert not any(f"test_IoU/{n}" in out for n in ("aeroplane", "class_1"))
