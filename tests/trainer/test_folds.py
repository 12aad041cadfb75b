"""`dataset folds`: a built dataset's train and validation collections dealt into folds for cross-validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from photo_folders import gradient_photo, write_photos
from typer.testing import CliRunner

from colorizer_trainer import data
from colorizer_trainer.cli import app
from colorizer_trainer.dataset.build import (
    MANIFEST_NAME,
    PHOTOS_COLLECTION_PATTERN,
    PHOTOS_SOURCE_PATTERN,
    BuildOptions,
    DatasetError,
    build_dataset,
    dataset_fingerprint,
)
from colorizer_trainer.dataset.folds import REFIT_FOLDER, FoldsOptions, assign_folds, make_folds

# Source photos per collection; each photo is cropped twice.
COLLECTIONS = {"lake": 3, "park": 2, "road": 2, "snow": 1, "farm": 1, "town": 1, "dune": 1, "moor": 1}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("folds")
    photos = {
        f"{collection}{source}_{crop:03d}.jpg": gradient_photo(100 * index + 10 * source + crop, 40)
        for index, (collection, sources) in enumerate(COLLECTIONS.items())
        for source in range(sources)
        for crop in range(2)
    }
    photos["lake_scraped.png"] = gradient_photo(999, 40).convert("RGBA")  # kept, as converted
    write_photos(root / "raw" / "photos", photos)
    options = BuildOptions(
        size=32, seed=3, workers=1, group_by_source=PHOTOS_SOURCE_PATTERN,
        collection_of=PHOTOS_COLLECTION_PATTERN, val_fraction=0.15, test_fraction=0.15,
    )  # fmt: skip
    build_dataset(root / "raw", root / "data", options, progress=False)
    return root / "data"


def kept(folder: Path) -> list[dict]:
    return [entry for entry in json.loads((folder / MANIFEST_NAME).read_text())["files"] if entry["status"] != "dropped"]


def collections_in(folder: Path, split: str) -> set[str]:
    return {entry["collection"] for entry in kept(folder) if entry["split"] == split}


def test_each_train_or_validation_collection_is_validated_on_in_exactly_one_fold(dataset: Path, tmp_path: Path) -> None:
    made = make_folds(dataset, tmp_path / "folds", FoldsOptions(folds=3, seed=1))
    folds = {folder: held_out for folder, held_out in made.items() if folder.name != REFIT_FOLDER}

    assert len(folds) == 3
    pooled = collections_in(dataset, "train") | collections_in(dataset, "val")
    validated = [collections_in(fold, "val") for fold in folds]
    assert list(folds.values()) == [sorted(names) for names in validated]  # what each fold says it validates on
    assert sorted(name for names in validated for name in names) == sorted(pooled)
    for fold, names in zip(folds, validated):
        assert collections_in(fold, "train") == pooled - names
        assert not collections_in(fold, "test") and not any((fold / "test_x").iterdir())


def test_the_final_models_dataset_trains_on_every_collection_and_holds_nothing_out(dataset: Path, tmp_path: Path) -> None:
    made = make_folds(dataset, tmp_path / "folds", FoldsOptions(folds=2))

    everything = tmp_path / "folds" / REFIT_FOLDER
    assert made[everything] == []
    assert collections_in(everything, "train") == collections_in(dataset, "train") | collections_in(dataset, "val")
    assert data.holdout_split(everything) is None
    assert len(data.paired_files(everything, "train")[0]) == sum(len(data.paired_files(dataset, s)[0]) for s in ("train", "val"))


def test_a_fold_is_a_dataset_the_trainer_reads_with_the_same_pictures(dataset: Path, tmp_path: Path) -> None:
    fold = next(iter(make_folds(dataset, tmp_path / "folds", FoldsOptions(folds=2))))

    grays, colours = data.paired_files(fold, "val")
    originals = {path.name: path for path in [*dataset.glob("train_y/*.png"), *dataset.glob("val_y/*.png")]}
    assert all(Path(colour).read_bytes() == originals[Path(colour).name].read_bytes() for colour in colours)
    assert len(grays) == len(colours) > 0
    assert data.PhotoGroups.read(fold).photo_of.items() <= data.PhotoGroups.read(dataset).photo_of.items()  # test files left out
    assert dataset_fingerprint(fold) != dataset_fingerprint(dataset)
    assert not any(Path(link.readlink()).is_absolute() for link in fold.glob("*_x/*.png"))


def test_folds_hold_about_equal_numbers_of_photos_and_follow_the_seed() -> None:
    photos = {name: {f"{name}{index}" for index in range(size)} for name, size in {"a": 5, "b": 3, "c": 2, "d": 2, "e": 1, "f": 1}.items()}
    dealt = assign_folds(photos, folds=2, seed=4)

    assert sorted(sum(len(photos[name]) for name in names) for names in dealt) == [7, 7]
    assert assign_folds(photos, folds=2, seed=4) == dealt
    assert any(assign_folds(photos, folds=2, seed=seed) != dealt for seed in range(20))  # ties are shuffled


def test_folds_refuse_a_dataset_without_collections_and_an_out_already_holding_folds(dataset: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    manifest = json.loads((dataset / MANIFEST_NAME).read_text())
    (plain / MANIFEST_NAME).write_text(json.dumps(manifest | {"files": [e | {"collection": None} for e in manifest["files"]]}))
    with pytest.raises(DatasetError, match="--collection-of"):
        make_folds(plain, tmp_path / "folds")
    with pytest.raises(DatasetError, match="cannot make"):
        make_folds(dataset, tmp_path / "many", FoldsOptions(folds=len(COLLECTIONS) + 1))

    make_folds(dataset, tmp_path / "folds")
    with pytest.raises(DatasetError, match="already holds folds"):
        make_folds(dataset, tmp_path / "folds")


def test_folds_command_says_what_each_fold_validates_on(dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dataset", "folds", str(dataset), str(tmp_path / "folds"), "--folds", "2"])

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    folders = [str(tmp_path / "folds" / name) for name in ("fold0", "fold1", REFIT_FOLDER)]
    assert [line.split(":")[0] for line in lines] == folders
    assert all("validates on" in line for line in lines[:2])
    assert "every collection" in lines[2]
