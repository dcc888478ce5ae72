"""Conveyor's own versions of the test helpers Lightning 1.6's tests import from
``tests.helpers`` (same names and observable shapes, written on conveyor's classes)."""

from tests.helpers.boring_model import BoringDataModule, BoringModel, RandomDataset  # noqa: F401
