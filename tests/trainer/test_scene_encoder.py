"""The frozen COCO backbone: read from its published files, it still sees what is in a photo."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorizer_trainer.scene_encoder import DETECTIONS, GRAPH_PATH, FrozenGraph, SceneEncoder

PHOTOS = Path(__file__).parents[1] / "photos"
COCO_PERSON, COCO_CUP = 0, 41


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gray_rgb(photo: str, size: int) -> np.ndarray:
    """A test photo in gray, as the graph takes it: (1, size, size, 3) in [0, 255]."""
    gray = Image.open(PHOTOS / photo).convert("L").resize((size, size), Image.BILINEAR)
    return np.repeat(np.asarray(gray, np.float32)[None, ..., None], 3, axis=-1)


def test_the_weights_are_the_published_packages_files():
    readme = (GRAPH_PATH.parent / "README.md").read_text()
    for path in (GRAPH_PATH, GRAPH_PATH.with_suffix(".bin")):
        assert f"`{path.name}` | `{_sha256(path)}`" in readme


@pytest.mark.parametrize("size", [512, 320])  # the size it was exported at, and another multiple of 32
@pytest.mark.parametrize("photo, coco_class", [("astronaut.jpg", COCO_PERSON), ("coffee.jpg", COCO_CUP)])
def test_the_detector_read_from_its_graph_finds_the_photos_subject_in_gray(photo, coco_class, size):
    (heatmaps,) = FrozenGraph((DETECTIONS,))(_gray_rgb(photo, size))
    assert heatmaps.shape == (1, size // 4, size // 4, 80)
    strongest_first = np.argsort(-np.max(heatmaps.numpy()[0], axis=(0, 1)))
    assert coco_class in strongest_first[:3]  # of 80 classes


def test_scene_features_come_at_1_8_and_1_16_of_the_photo():
    stride_16, stride_32 = SceneEncoder()(np.full((1, 64, 96, 1), 0.5, np.float32))
    # The backbone sees the photo at twice its size, nearer the 512x512 it was trained on.
    assert stride_16.shape == (1, 8, 12, 88) and stride_32.shape == (1, 4, 6, 120)


@pytest.mark.parametrize("height, width, head_size", [(64, 96, (32, 48)), (200, 200, (104, 104))])
def test_with_detail_the_detectors_head_comes_at_about_half_the_photos_size(height, width, head_size):
    *_, head = SceneEncoder(detail=True)(np.full((1, height, width, 1), 0.5, np.float32))
    # Twice the photo, rounded up to a multiple of 32 (400 -> 416), seen at 1/4.
    assert head.shape == (1, *head_size, 128)


def test_the_graph_reader_refuses_ops_it_cannot_run():
    with pytest.raises(ValueError, match="TopKV2"):
        FrozenGraph(("tower_0/detections",))
