"""`conveyor doctor`: every planted problem is found (one test each), clean trees pass, the
summary, --plot, --json and the exit status."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from folder_trees import annotation_xml, make_tree
from PIL import Image

from conveyor.cli import main
from conveyor.doctor import SEVERITY, diagnose


def run(capsys, *argv) -> tuple:
    code = main(["doctor", *map(str, argv)])
    return code, capsys.readouterr().out


def doctor_json(capsys, *argv) -> tuple:
    code, out = run(capsys, *argv, "--json")
    return code, json.loads(out)


@pytest.fixture
def tree(tmp_path) -> Path:
    return make_tree(tmp_path / "data", "labelimg", count=6)


def xml(tree: Path, stem: str) -> Path:
    return tree / "annotations" / f"{stem}.xml"


def test_clean_tree_exits_zero_with_a_summary(capsys, tree, tmp_path):
    code, out = run(capsys, tree, "--plot", tmp_path / "plot.png")
    assert code == 0
    assert "no problems found" in out and "images: 6" in out
    assert "raccoon" in out and "box size" in out and "image size" in out
    assert (tmp_path / "plot.png").stat().st_size > 1000
    code, result = doctor_json(capsys, tree)
    assert code == 0 and result["ok"] and result["errors"] == [] and result["warnings"] == []
    assert result["images"] == 6 and result["layout"] == "labelimg"
    assert sum(result["classes"].values()) == result["objects"] > 0
    assert sum(result["histograms"]["box_sqrt_area"].values()) == result["objects"]
    assert sum(result["histograms"]["image_max_side"].values()) == 6


@pytest.mark.parametrize("layout", ["vocdevkit", "cvat", "labelme", "roboflow", "labelimg-beside"])
def test_clean_trees_of_every_layout(capsys, tmp_path, layout):
    code, result = doctor_json(capsys, make_tree(tmp_path, layout, count=6))
    assert code == 0, result["errors"]


def _plant(tree: Path, problem: str) -> tuple:
    """Plants ``problem``; returns (expected finding kind, file it names, extra CLI args)."""
    args = []
    if problem == "malformed-annotation":
        xml(tree, "img_001").write_text("<annotation><object>")
        path = xml(tree, "img_001")
    elif problem == "corrupt-image":
        path = tree / "images" / "img_002.jpg"
        path.write_bytes(path.read_bytes()[:300])  # truncated
    elif problem == "orphan-annotation":
        (tree / "images" / "img_003.jpg").unlink()
        path = xml(tree, "img_003")
    elif problem == "orphan-image":
        xml(tree, "img_003").unlink()
        path = tree / "images" / "img_003.jpg"
    elif problem == "missing-size":
        path = xml(tree, "img_000")
        path.write_text(annotation_xml("img_000.jpg", (0, 0), [("zebra", (2, 2, 20, 20))]))
    elif problem == "size-mismatch":
        path = xml(tree, "img_000")
        path.write_text(annotation_xml("img_000.jpg", (800, 600), [("zebra", (2, 2, 20, 20))]))
    elif problem in ("inverted-box", "zero-area-box", "out-of-bounds-box"):
        box = {
            "inverted-box": (40, 2, 20, 20),
            "zero-area-box": (20, 2, 20, 20),
            "out-of-bounds-box": (50, 40, 140, 90),
        }[problem]
        path = xml(tree, "img_004")
        path.write_text(annotation_xml("img_004.jpg", (96, 72), [("zebra", box)]))
    elif problem == "unknown-class":
        path = xml(tree, "img_004")
        path.write_text(annotation_xml("img_004.jpg", (96, 72), [("giraffe", (2, 2, 20, 20))]))
        args = ["--classes", "raccoon,traffic sign,zebra"]
    elif problem == "near-duplicate-class":
        path = ""
        xml(tree, "img_004").write_text(
            annotation_xml("img_004.jpg", (96, 72), [("Zebra", (2, 2, 20, 20))])
        )
        xml(tree, "img_005").write_text(
            annotation_xml("img_005.jpg", (96, 72), [("traffic_sign", (2, 2, 20, 20))])
        )
    elif problem == "duplicate-image":
        path = tree / "images" / "img_005.jpg"
        shutil.copy(tree / "images" / "img_000.jpg", path)
    elif problem == "empty-annotation":
        path = xml(tree, "img_002")
        path.write_text(annotation_xml("img_002.jpg", (96, 72), []))
    else:
        raise ValueError(problem)
    return problem, str(path), args


PLANTED = [kind for kind in SEVERITY if kind not in ("missing-file", "non-finite-box", "bad-mask")]


@pytest.mark.parametrize("problem", PLANTED)
def test_each_planted_problem_is_found(capsys, tree, problem):
    kind, path, args = _plant(tree, problem)
    code, result = doctor_json(capsys, tree, *args)
    severity = SEVERITY[kind]
    found = [f for f in result[f"{severity}s"] if f["kind"] == kind]
    assert found, result
    if path:
        assert any(f["path"] == path for f in found), found
    assert result["counts"][kind] == len(found)
    assert code == (1 if severity == "error" else 0)
    assert result["ok"] is (severity != "error")
    code, out = run(capsys, tree, *args)
    assert f"{severity.upper()} {kind}" in out


def test_missing_split_entry_is_an_error(capsys, tmp_path):
    root = make_tree(tmp_path, "vocdevkit", count=4)
    base = root / "VOCdevkit" / "VOC2012"
    (base / "JPEGImages" / "img_000.jpg").unlink()
    (base / "Annotations" / "img_000.xml").unlink()
    code, result = doctor_json(capsys, root)
    missing = [f for f in result["errors"] if f["kind"] == "missing-file"]
    assert code == 1 and len(missing) == 1 and "split 'train'" in missing[0]["message"]
    from conveyor.datasets import VOCFolder

    with pytest.warns(UserWarning, match="has no image and no annotation"):
        dataset = VOCFolder(root, "train")
    assert [p.kind for p in dataset.problems] == ["missing-file"]


def test_segmentation_masks(capsys, tmp_path):
    root = make_tree(tmp_path, "labelme", count=4)
    code, result = doctor_json(capsys, root, "--task", "segmentation")
    assert code == 0, result["errors"]
    mask = root / "SegmentationClass" / "img_001.png"
    Image.fromarray(np.full((10, 10), 9, np.uint8), "L").save(mask)  # wrong size, class 9
    code, result = doctor_json(capsys, root, "--task", "segmentation")
    messages = [f["message"] for f in result["errors"] if f["kind"] == "bad-mask"]
    assert code == 1 and len(messages) == 2
    assert any("10x10" in m for m in messages) and any("[9]" in m for m in messages)


def test_real_files(capsys, realvoc, tmp_path):
    root = tmp_path / "raccoon"
    shutil.copytree(realvoc / "datitran__raccoon_dataset", root)
    code, result = doctor_json(capsys, root)
    assert result["images"] == 5 and result["classes"] == {"raccoon": result["objects"]}
    assert code == (0 if result["ok"] else 1)


def test_usage_errors_exit_two(capsys, tmp_path):
    code, _ = run(capsys, tmp_path / "missing")
    assert code == 2
    assert "no such directory" in capsys.readouterr().err or code == 2


def test_diagnose_api_counts_and_threads(tree):
    _plant(tree, "inverted-box")
    one = diagnose(str(tree), num_threads=1, progress=False)
    two = diagnose(str(tree), num_threads=2, progress=False)
    assert one.counts() == two.counts() == {"inverted-box": 1}
    assert sorted(one.image_sizes) == sorted(two.image_sizes)
