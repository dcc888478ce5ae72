"""Shared fixtures. Tests generate their own data; the real VOC corpus in ../shared is
read-only and optional (tests that need it skip with the reason when it is absent)."""

import shutil
from pathlib import Path

import pytest

REALVOC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "realvoc"


@pytest.fixture(scope="session")
def realvoc() -> Path:
    """The real VOC sample corpus (read-only: copy what a test changes into tmp_path)."""
    if not REALVOC.is_dir():
        pytest.skip(f"real VOC corpus not found at {REALVOC} (it ships with CI's ../shared only)")
    return REALVOC


@pytest.fixture(scope="session")
def real_voc_tree(realvoc, tmp_path_factory):
    """The real JPEG + XML pairs of the shared corpus, copied into one VOC2012 tree."""
    base = tmp_path_factory.mktemp("realvoc") / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / folder).mkdir(parents=True)
    ids = []
    for xml in sorted(realvoc.rglob("*.xml")):
        jpgs = sorted(xml.parent.parent.rglob(xml.stem + ".jpg"))
        if not jpgs:
            continue
        image_id = f"{len(ids):04d}"
        shutil.copy(xml, base / "Annotations" / f"{image_id}.xml")
        shutil.copy(jpgs[0], base / "JPEGImages" / f"{image_id}.jpg")
        ids.append(image_id)
    if len(ids) < 8:
        pytest.skip("too few image/annotation pairs in the real VOC corpus")
    (base / "ImageSets" / "Main" / "trainval.txt").write_text("".join(f"{i}\n" for i in ids))
    return base.parent.parent
