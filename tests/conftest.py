"""Shared fixtures. Tests generate their own data; the real VOC corpus in ../shared is
read-only and optional (tests that need it skip with the reason when it is absent)."""

from pathlib import Path

import pytest

REALVOC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "realvoc"


@pytest.fixture(scope="session")
def realvoc() -> Path:
    """The real VOC sample corpus (read-only: copy what a test changes into tmp_path)."""
    if not REALVOC.is_dir():
        pytest.skip(f"real VOC corpus not found at {REALVOC} (it ships with CI's ../shared only)")
    return REALVOC
