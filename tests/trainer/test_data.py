"""The input pipeline: photos weigh the same whatever their crop count; hints as a user gives them;
cut-outs pasted with their true colour and its luma; grays remade as films other than the eye record them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from photo_folders import CUTOUT_RED, red_cutout, write_photos, write_tiny_dataset
from PIL import Image

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
    hints = hints_from_truth(Image.fromarray(truth), 5, 40, np.random.default_rng(0))
    assert len(hints) == 5
    assert {hint.color for hint in hints} == {"#c81e5a"}
    assert all(0 <= hint.x < 80 and 0 <= hint.y < 60 for hint in hints)


@pytest.fixture
def cutouts_folder(tmp_path: Path) -> Path:
    """A cut-out in a subfolder, beside an opaque photo (not a cut-out)."""
    write_photos(tmp_path / "cutouts" / "food", {"apple.png": red_cutout()})
    return write_photos(tmp_path / "cutouts", {"photo.png": Image.new("RGB", (50, 50), (0, 90, 200))})


def test_cutouts_are_trimmed_to_their_object_and_opaque_images_left_out(cutouts_folder: Path) -> None:
    cutouts = data.load_cutouts(cutouts_folder).numpy()
    assert cutouts.shape == (1, data.CUTOUT_SIDE, data.CUTOUT_SIDE, 4)
    assert cutouts[0, ..., 3].min() == 1.0  # the 30x30 square, scaled up to fill the whole cut-out
    assert np.allclose(cutouts[0, 48, 48, :3], np.array(CUTOUT_RED) / 255, atol=1 / 255)


def test_a_folder_without_cutouts_is_an_error_that_says_so(tmp_path: Path) -> None:
    Image.new("RGB", (50, 50)).save(tmp_path / "photo.png")
    with pytest.raises(FileNotFoundError, match="transparent background"):
        data.load_cutouts(tmp_path)


def test_a_cutout_that_is_no_image_is_named(cutouts_folder: Path) -> None:
    (cutouts_folder / "page.png").write_text("<html>not a picture</html>")
    with pytest.raises(ValueError, match="page.png cannot be read"):
        data.load_cutouts(cutouts_folder)


def test_pasted_cutouts_keep_their_colour_and_the_gray_twin_its_luma(cutouts_folder: Path) -> None:
    cutouts = data.load_cutouts(cutouts_folder)
    colour = tf.fill((64, 48, 3), 0.5)
    gray = tf.fill((64, 48, 1), 0.5)
    pasted = 0
    for index in range(40):
        new_gray, new_colour = data.paste_cutouts(gray, colour, cutouts, tf.constant([5, index], tf.int64))
        red = np.all(np.abs(new_colour.numpy() - np.array(CUTOUT_RED) / 255) < 1e-3, axis=-1)
        pasted += bool(red.any())
        luma = tf.reduce_sum(new_colour * data.LUMA_WEIGHTS, axis=-1, keepdims=True)
        assert np.allclose(new_gray.numpy(), luma.numpy(), atol=1e-5)
        again = data.paste_cutouts(gray, colour, cutouts, tf.constant([5, index], tf.int64))[1]
        assert np.array_equal(again.numpy(), new_colour.numpy())  # a resumed run sees the same crops
    assert 8 <= pasted <= 32  # about PASTE_SHARE of 40


def film_weights(gray: tf.Tensor, colour: tf.Tensor) -> np.ndarray:
    """The weights on red, green and blue that made ``gray`` from ``colour`` (least squares)."""
    weights, *_ = np.linalg.lstsq(colour.numpy().reshape(-1, 3), gray.numpy().reshape(-1), rcond=None)
    return weights


def test_film_grays_weigh_red_green_and_blue_anew_for_a_share_of_crops() -> None:
    colour = tf.random.stateless_uniform((16, 16, 3), seed=(1, 2))
    gray = tf.reduce_sum(colour * data.LUMA_WEIGHTS, axis=-1, keepdims=True)
    remade = [data.random_film_gray(gray, colour, 0.5, tf.constant([3, index], tf.int64)) for index in range(60)]
    weights = np.array([film_weights(film, colour) for film in remade])
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-4) and (weights > -1e-4).all()  # a gray stays that gray
    kept = np.all(np.isclose(weights, data.LUMA_WEIGHTS, atol=1e-4), axis=1)
    assert 15 <= kept.sum() <= 45  # about half keep the dataset's luma
    assert np.ptp(weights[~kept][:, 0]) > 0.5  # from nearly red-blind (orthochromatic) to red-filtered
    again = data.random_film_gray(gray, colour, 0.5, tf.constant([3, 7], tf.int64))
    assert np.array_equal(again.numpy(), remade[7].numpy())  # a resumed run sees the same grays


def test_without_a_film_share_the_gray_twin_is_left_as_it_is() -> None:
    colour = tf.random.stateless_uniform((8, 8, 3), seed=(1, 2))
    gray = tf.zeros((8, 8, 1))
    assert not tf.reduce_any(data.random_film_gray(gray, colour, 0.0, tf.constant([0, 1], tf.int64)) != gray)


def test_training_batches_with_cutouts_keep_their_shapes_and_range(cropped_dataset: Path, cutouts_folder: Path) -> None:
    files = data.EpochSampler(cropped_dataset, crops_per_photo=8, seed=0).epoch_files(0)
    batches = data.training_batches(
        files, batch_size=4, seed=(0, 0), flips=True, crop=16, cutouts=data.load_cutouts(cutouts_folder), film_share=0.5
    )
    gray, colour, _ = next(iter(batches))
    assert gray.shape == (4, 16, 16, 1) and colour.shape == (4, 16, 16, 3)
    assert 0.0 <= float(tf.reduce_min(colour)) and float(tf.reduce_max(colour)) <= 1.0 + 1e-6
