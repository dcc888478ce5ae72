"""make_synthetic_voc and ``conveyor synth``: a real, deterministic, learnable VOC tree."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from conveyor import cli, voc
from conveyor.datasets import VOCDetection, VOCSegmentation, make_synthetic_voc
from conveyor.datasets.synthetic import VOID, voc_palette


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_palette_follows_the_voc_colour_map():
    palette = voc_palette()
    assert len(palette) == 768
    assert palette[3:6] == [128, 0, 0]
    assert palette[15 * 3 : 15 * 3 + 3] == [192, 128, 128]
    assert palette[255 * 3 :] == [224, 224, 192]


def test_tree_layout_and_contents(tmp_path):
    voc_root = make_synthetic_voc(tmp_path, num_images=12, seed=3, image_size=(120, 90))
    assert voc_root == tmp_path / "VOCdevkit" / "VOC2012"
    ids = (voc_root / "ImageSets/Main/trainval.txt").read_text().split()
    train = (voc_root / "ImageSets/Main/train.txt").read_text().split()
    val = (voc_root / "ImageSets/Main/val.txt").read_text().split()
    assert sorted(train + val) == sorted(ids) and not set(train) & set(val) and len(ids) == 12
    assert (voc_root / "ImageSets/Segmentation/val.txt").read_text().split() == val
    annotations = voc.load_annotations([voc_root / "Annotations" / f"{i}.xml" for i in ids])
    assert annotations.num_objects >= 12
    for i, image_id in enumerate(ids):
        with Image.open(voc_root / "JPEGImages" / f"{image_id}.jpg") as image:
            assert image.format == "JPEG" and image.size == (120, 90) and image.mode == "RGB"
            pixels = np.asarray(image)
        assert pixels.std() > 20  # textured, not flat
        with Image.open(voc_root / "SegmentationClass" / f"{image_id}.png") as mask_image:
            assert mask_image.mode == "P" and mask_image.getpalette()[:60] == voc_palette()[:60]
            mask = np.asarray(mask_image)
        values = set(np.unique(mask).tolist())
        assert VOID in values and 0 in values
        item = annotations[i]
        assert set(item.labels.tolist()) <= values  # every object class appears in the mask
        for (xmin, ymin, xmax, ymax), label in zip(item.boxes.astype(int), item.labels):
            inside = mask[ymin - 1 : ymax, xmin - 1 : xmax]  # VOC boxes: 1-based, inclusive
            assert 1 <= xmin <= xmax <= 120 and 1 <= ymin <= ymax <= 90
            assert (inside == label).any()
    # Per-class image lists of ImageSets/Main.
    dog = (voc_root / "ImageSets/Main/dog_trainval.txt").read_text().splitlines()
    assert len(dog) == 12 and all(line.split()[1] in ("1", "-1", "0") for line in dog)


def test_realistic_jpeg_sizes(tmp_path):
    voc_root = make_synthetic_voc(tmp_path, num_images=4, image_size=(500, 375))
    sizes = [p.stat().st_size for p in (voc_root / "JPEGImages").glob("*.jpg")]
    assert all(30_000 < size < 250_000 for size in sizes), sizes  # VOC photos: ~50-150 KB


def test_deterministic_for_a_seed(tmp_path):
    make_synthetic_voc(tmp_path / "a", num_images=5, seed=7, image_size=64)
    make_synthetic_voc(tmp_path / "b", num_images=5, seed=7, image_size=64)
    make_synthetic_voc(tmp_path / "c", num_images=5, seed=8, image_size=64)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "c")


@pytest.mark.parametrize("year", ["2007", "2011"])
def test_years_layouts_read_by_the_datasets(tmp_path, year):
    make_synthetic_voc(tmp_path, num_images=6, year=year, image_size=64)
    detection = VOCDetection(tmp_path, year=year, image_set="trainval", target_format="boxes")
    segmentation = VOCSegmentation(tmp_path, year=year, image_set="val")
    assert len(detection) > 0 and len(segmentation) > 0
    if year == "2007":
        assert len(VOCDetection(tmp_path, year="2007", image_set="test")) > 0
    else:
        assert (tmp_path / "TrainVal" / "VOCdevkit" / "VOC2011").is_dir()


def test_classes_are_distinguishable_by_appearance(tmp_path):
    """A nearest-mean classifier on mean object colour already separates most classes: the
    objects are learnable."""
    voc_root = make_synthetic_voc(tmp_path, num_images=80, seed=1, image_size=(160, 120))
    ids = sorted(p.stem for p in (voc_root / "Annotations").glob("*.xml"))
    features, labels = [], []
    for image_id in ids:
        image = np.asarray(Image.open(voc_root / "JPEGImages" / f"{image_id}.jpg"), dtype=float)
        mask = np.asarray(Image.open(voc_root / "SegmentationClass" / f"{image_id}.png"))
        for label in set(np.unique(mask).tolist()) - {0, VOID}:
            pixels = image[mask == label]
            if len(pixels) > 50:
                features.append(np.concatenate([pixels.mean(0), pixels.std(0)]))
                labels.append(label)
    features, labels = np.array(features), np.array(labels)
    half = len(labels) // 2
    means = {c: features[:half][labels[:half] == c].mean(0) for c in set(labels[:half].tolist())}
    correct = sum(
        min(means, key=lambda c: np.linalg.norm(f - means[c])) == y
        for f, y in zip(features[half:], labels[half:])
    )
    assert correct / (len(labels) - half) > 0.6


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="Unknown year"):
        make_synthetic_voc(tmp_path, year="2013")
    with pytest.raises(ValueError, match="num_images"):
        make_synthetic_voc(tmp_path, num_images=1)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        make_synthetic_voc(tmp_path, image_size="big")


def test_conveyor_synth_command(tmp_path, capsys):
    assert (
        cli.main(
            [
                "synth",
                str(tmp_path),
                "--num-images",
                "4",
                "--year",
                "2010",
                "--seed",
                "2",
                "--image-size",
                "80x60",
            ]
        )
        == 0
    )
    assert "wrote 4 images" in capsys.readouterr().out
    files = list((tmp_path / "VOCdevkit/VOC2010/JPEGImages").glob("*.jpg"))
    assert len(files) == 4 and Image.open(files[0]).size == (80, 60)
    with pytest.raises(SystemExit) as info:
        cli.main(["synth", str(tmp_path), "--image-size", "nope"])
    assert info.value.code == 2
