"""Tiny photo folders on disk: any folder of named photos, and the split layout `dataset build` writes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

TINY_SIZE = 200  # the seed's generator only takes its native size
SPLIT_OFFSETS = {"train": 0, "val": 50, "test": 100}  # so no two splits share a photo


def gradient_photo(index: int, size: int) -> Image.Image:
    """A smooth, colourful square photo: a different gradient per index."""
    y, x = np.mgrid[0:size, 0:size] / size
    phase = index * 0.7
    rgb = np.stack([np.sin(3 * x + phase), np.cos(2 * y - phase), np.sin(x * y * 5 + phase)], axis=-1)
    return Image.fromarray(((rgb * 0.5 + 0.5) * 255).astype(np.uint8), "RGB")


def write_photos(folder: Path, photos: Mapping[str, Image.Image]) -> Path:
    """Save each photo under its file name (whose extension picks the format) in ``folder``, made if missing."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, photo in photos.items():
        photo.save(folder / name)
    return folder


def write_tiny_dataset(root: Path, *, train: int = 4, val: int = 2, test: int = 2, size: int = TINY_SIZE) -> Path:
    """``root/<split>_y`` colour photos and their grayscale twins in ``root/<split>_x``, as `dataset build` writes."""
    for split, count in (("train", train), ("val", val), ("test", test)):
        names = [f"{split}{index:02d}.png" for index in range(count)]
        colour = {name: gradient_photo(index + SPLIT_OFFSETS[split], size) for index, name in enumerate(names)}
        write_photos(root / f"{split}_y", colour)
        write_photos(root / f"{split}_x", {name: photo.convert("L") for name, photo in colour.items()})
    return root


CUTOUT_RED = (220, 20, 20)


def red_cutout() -> Image.Image:
    """A red 30x30 square on a transparent 60x40 background: an object cut out of its photo."""
    cutout = Image.new("RGBA", (60, 40))
    cutout.paste((*CUTOUT_RED, 255), (10, 5, 40, 35))
    return cutout
