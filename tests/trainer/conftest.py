"""Fixtures for the trainer's tests: a tiny dataset in the layout `dataset build` writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from photo_folders import write_tiny_dataset


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "data")


@pytest.fixture(autouse=True)
def float32_policy():
    """A test that trains in mixed precision must not leave it on for the next one."""
    import keras

    yield
    keras.config.set_dtype_policy("float32")
