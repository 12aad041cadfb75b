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
DETECTOR_SIZE = 512  # the detector's head only runs at the size it was exported for


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gray_rgb(photo: str) -> np.ndarray:
    """A test photo in gray, as the graph takes it: (1, 512, 512, 3) in [0, 255]."""
    gray = Image.open(PHOTOS / photo).convert("L").resize((DETECTOR_SIZE, DETECTOR_SIZE), Image.BILINEAR)
    return np.repeat(np.asarray(gray, np.float32)[None, ..., None], 3, axis=-1)


def test_the_weights_are_the_published_packages_files():
    readme = (GRAPH_PATH.parent / "README.md").read_text()
    for path in (GRAPH_PATH, GRAPH_PATH.with_suffix(".bin")):
        assert f"`{path.name}` | `{_sha256(path)}`" in readme


@pytest.mark.parametrize("photo, coco_class", [("astronaut.jpg", COCO_PERSON), ("coffee.jpg", COCO_CUP)])
def test_the_detector_read_from_its_graph_finds_the_photos_subject_in_gray(photo, coco_class):
    (heatmaps,) = FrozenGraph((DETECTIONS,))(_gray_rgb(photo))
    strongest_first = np.argsort(-np.max(heatmaps.numpy()[0], axis=(0, 1)))
    assert coco_class in strongest_first[:3]  # of 80 classes


def test_scene_features_come_at_1_16_and_1_32_of_the_photo():
    stride_16, stride_32 = SceneEncoder()(np.full((1, 64, 96, 1), 0.5, np.float32))
    # The backbone sees the photo at twice its size, nearer the 512x512 it was trained on.
    assert stride_16.shape == (1, 8, 12, 88) and stride_32.shape == (1, 4, 6, 120)


def test_the_graph_reader_refuses_ops_it_cannot_run():
    with pytest.raises(ValueError, match="TopKV2"):
        FrozenGraph(("tower_0/detections",))
