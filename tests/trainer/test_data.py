"""The input pipeline: photos weigh the same whatever their crop count; hints as a user gives them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from photo_folders import write_tiny_dataset

from colorizer_core import contract
from colorizer_trainer import data
from colorizer_trainer.hints_curve import hints_from_truth


@pytest.fixture
def cropped_dataset(tmp_path: Path) -> Path:
    """8 training files: 6 crops of one wallpaper and 2 snapshots, as the manifest says."""
    root = write_tiny_dataset(tmp_path / "data", train=8, size=32)
    names = sorted(path.name for path in (root / "train_x").iterdir())
    groups = ["wallpaper"] * 6 + ["snapshot-a", "snapshot-b"]
    files = [{"name": name, "group": group} for name, group in zip(names, groups)]
    (root / data.MANIFEST_NAME).write_text(json.dumps({"files": files}))
    return root


def test_each_epoch_takes_at_most_crops_per_photo_files_of_each_photo(cropped_dataset: Path) -> None:
    sampler = data.EpochSampler(cropped_dataset, crops_per_photo=2, seed=0)
    assert sampler.files_per_epoch == 4
    for epoch in range(3):
        photos = Counter("snapshot" if name in _snapshots(cropped_dataset) else "wallpaper" for name in _names(sampler, epoch))
        assert photos == {"wallpaper": 2, "snapshot": 2}


def test_epochs_draw_other_crops_but_replay_identically(cropped_dataset: Path) -> None:
    sampler = data.EpochSampler(cropped_dataset, crops_per_photo=2, seed=0)
    assert sampler.epoch_files(1) == data.EpochSampler(cropped_dataset, crops_per_photo=2, seed=0).epoch_files(1)
    assert len({frozenset(_names(sampler, epoch)) for epoch in range(6)}) > 1


@pytest.fixture
def unbalanced_dataset(tmp_path: Path) -> Path:
    """12 training photos, one file each: 10 of one big collection, 1 of each of two small ones."""
    root = write_tiny_dataset(tmp_path / "data", train=12, size=32)
    names = sorted(path.name for path in (root / "train_x").iterdir())
    collections = ["big"] * 10 + ["small-a", "small-b"]
    files = [
        {"name": name, "group": f"photo{index}", "collection": collection}
        for index, (name, collection) in enumerate(zip(names, collections))
    ]
    (root / data.MANIFEST_NAME).write_text(json.dumps({"files": files}))
    return root


def test_each_epoch_takes_at_most_photos_per_collection_of_each_collection(unbalanced_dataset: Path) -> None:
    sampler = data.EpochSampler(unbalanced_dataset, crops_per_photo=2, seed=0, photos_per_collection=3)
    assert sampler.files_per_epoch == 5
    collection_of = {entry["name"]: entry["collection"] for entry in _manifest(unbalanced_dataset)}
    seen_big = set()
    for epoch in range(6):
        names = _names(sampler, epoch)
        assert Counter(collection_of[name] for name in names) == {"big": 3, "small-a": 1, "small-b": 1}
        seen_big |= {name for name in names if collection_of[name] == "big"}
    assert len(seen_big) > 3  # epochs draw other photos of the big collection


def test_without_photos_per_collection_every_photo_is_in_every_epoch(unbalanced_dataset: Path) -> None:
    sampler = data.EpochSampler(unbalanced_dataset, crops_per_photo=2, seed=0)
    assert sampler.files_per_epoch == 12
    assert sorted(_names(sampler, 0)) == sorted(entry["name"] for entry in _manifest(unbalanced_dataset))


def test_collection_sampling_replays_identically(unbalanced_dataset: Path) -> None:
    first, again = (
        data.EpochSampler(unbalanced_dataset, crops_per_photo=2, seed=0, photos_per_collection=3) for _ in range(2)
    )
    assert first.epoch_files(2) == again.epoch_files(2)


def _manifest(root: Path) -> list[dict]:
    return json.loads((root / data.MANIFEST_NAME).read_text())["files"]


def _names(sampler: data.EpochSampler, epoch: int) -> list[str]:
    return [Path(gray).name for gray, _ in sampler.epoch_files(epoch)]


def _snapshots(root: Path) -> set[str]:
    return {entry["name"] for entry in _manifest(root) if "snapshot" in entry["group"]}


def test_training_batches_are_random_resized_crops_with_their_hints(cropped_dataset: Path) -> None:
    files = data.EpochSampler(cropped_dataset, crops_per_photo=8, seed=0).epoch_files(0)
    gray, colour, hints = next(iter(data.training_batches(files, batch_size=4, seed=(0, 0), flips=True, crop=16, hints=True)))
    assert gray.shape == (4, 16, 16, 1) and colour.shape == (4, 16, 16, 3) and hints.shape == (4, 16, 16, 4)
    assert 0.0 <= float(tf.reduce_min(colour)) and float(tf.reduce_max(colour)) <= 1.0


def _flat_photo(size: int = 40) -> tf.Tensor:
    y = tf.linspace(0.0, 1.0, size)[:, None, None] * tf.ones((size, size, 1))
    return tf.concat([y, 1.0 - y, tf.fill((size, size, 1), 0.25)], axis=-1)  # (H, W, 3), varies by row


def test_simulated_hints_are_patches_of_the_true_mean_colour_often_none():
    photo = _flat_photo()
    counts = []
    for index in range(40):
        hints = data.simulate_hints(photo, tf.constant([3, index], tf.int64)).numpy()
        mask = hints[..., 3]
        assert set(np.unique(mask)) <= {0.0, 1.0}
        counts.append(mask.sum())
        # Hinted colours are local means of the truth: within a HINT_PATCH's reach of it.
        assert np.all(np.abs(hints[..., :3] - photo.numpy())[mask == 1] < contract.HINT_PATCH / 40 + 1e-5)
    no_hints = sum(count == 0 for count in counts)
    assert 8 <= no_hints <= 32  # about NO_HINT_SHARE of 40
    assert max(counts) >= contract.HINT_PATCH**2  # at least one whole square


def test_hints_from_the_truth_carry_its_mean_colour_where_the_service_paints_them():
    truth = (np.zeros((60, 80, 3)) + (200, 30, 90)).astype(np.uint8)
    from PIL import Image

    hints = hints_from_truth(Image.fromarray(truth), 5, 40, np.random.default_rng(0))
    assert len(hints) == 5
    assert {hint.color for hint in hints} == {"#c81e5a"}
    assert all(0 <= hint.x < 80 and 0 <= hint.y < 60 for hint in hints)
