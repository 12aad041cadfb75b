"""Folds by collection, so that a choice made on validation sees many collections, not a handful.

``colorize-train dataset folds DATA OUT --folds K`` splits the collections of DATA's train and
validation photos (its test split is left alone) into K folds of about equal numbers of source
photos. ``OUT/fold<i>`` is a dataset like DATA whose validation split is fold i's collections and
whose train split is all the others': train one run on each, then ``choose-decoding`` on all the
runs pools their validation images. ``OUT/all`` trains on every one of those collections and
validates on none: the final model's dataset, once cross-validation has made the choices. Their files
link to DATA's; each manifest is DATA's, with each file's split rewritten and the folds recorded.
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from colorizer_trainer.dataset.build import MANIFEST_NAME, SPLIT_FOLDERS, DatasetError

FOLD_PREFIX = "fold"
REFIT_FOLDER = "all"  # every collection in train: the final model's
POOLED_SPLITS = ("train", "val")


@dataclass(frozen=True)
class FoldsOptions:
    folds: int = 2
    seed: int = 0  # shuffles collections of equal size before they are dealt out


def assign_folds(photos_by_collection: Mapping[str, set[str]], folds: int, seed: int) -> list[list[str]]:
    """The collections of each fold: largest first (equal sizes in a seeded shuffle), each to the fold
    with the fewest source photos so far."""
    if len(photos_by_collection) < folds:
        raise DatasetError(f"{len(photos_by_collection)} collections cannot make {folds} folds")
    shuffled = sorted(photos_by_collection)
    random.Random(seed).shuffle(shuffled)
    dealt: list[list[str]] = [[] for _ in range(folds)]
    photos = [0] * folds
    for collection in sorted(shuffled, key=lambda name: -len(photos_by_collection[name])):  # a stable sort
        fold = photos.index(min(photos))
        dealt[fold].append(collection)
        photos[fold] += len(photos_by_collection[collection])
    return dealt


def make_folds(data: Path, out: Path, options: FoldsOptions = FoldsOptions()) -> dict[Path, list[str]]:
    """Write ``OUT/fold0`` ... ``OUT/fold<K-1>`` and ``OUT/all``; return each with the collections it validates on."""
    manifest_path = data / MANIFEST_NAME
    if not manifest_path.is_file():
        raise DatasetError(f"{data} has no {MANIFEST_NAME}: build it with `colorize-train dataset build`")
    manifest = json.loads(manifest_path.read_text())
    pooled = [entry for entry in manifest["files"] if entry.get("split") in POOLED_SPLITS]  # kept or converted
    if not all(entry.get("collection") for entry in pooled):
        raise DatasetError(f"{data} was built without --collection-of: its files name no collection")
    photos_by_collection: defaultdict[str, set[str]] = defaultdict(set)
    for entry in pooled:
        photos_by_collection[entry["collection"]].add(entry["group"])
    dealt = [*(sorted(names) for names in assign_folds(photos_by_collection, options.folds, options.seed)), []]

    folders = [*(out / f"{FOLD_PREFIX}{index}" for index in range(options.folds)), out / REFIT_FOLDER]
    if any(folder.exists() for folder in folders):
        raise DatasetError(f"{out} already holds folds; remove them first")
    for folder, held_out in zip(folders, dealt):
        for name in SPLIT_FOLDERS:
            (folder / name).mkdir(parents=True)
        files = [entry | {"split": "val" if entry["collection"] in held_out else "train"} for entry in pooled]
        for old, new in zip(pooled, files):
            for side in ("x", "y"):
                link = folder / f"{new['split']}_{side}" / new["name"]
                link.symlink_to(os.path.relpath(data / f"{old['split']}_{side}" / old["name"], link.parent))
        fold = {"folds": options.folds, "seed": options.seed, "validation_collections": held_out}
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest | {"files": files, "fold": fold}, indent=1) + "\n")
    return dict(zip(folders, dealt))
