"""Fixtures for Lightning's test files run by run_lightning_tests.py (our own versions of the
autouse guards Lightning's suite has): environment variables set by a test do not leak, and
``torch.use_deterministic_algorithms`` is reset after each test."""

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def restore_env_variables():
    saved = os.environ.copy()
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def reset_deterministic_algorithm():
    yield
    torch.use_deterministic_algorithms(False)
