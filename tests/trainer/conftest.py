"""Fixtures for the trainer's tests: a tiny dataset in the layout `dataset build` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TINY_SIZE = 200  # the seed's generator only takes its native size


def _photo(index: int, size: int) -> Image.Image:
    """A smooth, colourful test photo: a different gradient per index."""
    y, x = np.mgrid[0:size, 0:size] / size
    phase = index * 0.7
    rgb = np.stack([np.sin(3 * x + phase), np.cos(2 * y - phase), np.sin(x * y * 5 + phase)], axis=-1)
    return Image.fromarray(((rgb * 0.5 + 0.5) * 255).astype(np.uint8), "RGB")


SPLIT_OFFSETS = {"train": 0, "val": 50, "test": 100}  # so no two splits share a photo


def write_tiny_dataset(root: Path, *, train: int = 4, val: int = 2, test: int = 2, size: int = TINY_SIZE) -> Path:
    for split, count in (("train", train), ("val", val), ("test", test)):
        for suffix in ("x", "y"):
            (root / f"{split}_{suffix}").mkdir(parents=True)
        for index in range(count):
            photo = _photo(index + SPLIT_OFFSETS[split], size)
            photo.save(root / f"{split}_y" / f"{split}{index:02d}.png")
            photo.convert("L").save(root / f"{split}_x" / f"{split}{index:02d}.png")
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "data")


@pytest.fixture(autouse=True)
def float32_policy():
    """A test that trains in mixed precision must not leave it on for the next one."""
    import keras

    yield
    keras.config.set_dtype_policy("float32")
