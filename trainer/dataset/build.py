"""Build the training dataset from folders of raw photos: the seed's ten steps, minus the scraping.

``RAW/<category>/*`` goes in. Out come ``OUT/{train,test}_y/<hex>.png``, the colour targets, and
``OUT/{train,test}_x/<hex>.png``, their grayscale twins under the same names (and ``val_{x,y}`` when
the split is by collection), plus
``OUT/manifest.json``: the options, what became of every input file and why, and the dataset's
fingerprint. RAW is only ever read.

Each step is a small function named for it; ``build_dataset`` runs them in order. The work happens
in ``OUT/.building`` and is moved into place at the end, so a failed build leaves no half dataset.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import random
import re
import secrets
import shutil
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from PIL import Image, ImageOps
from tqdm import tqdm

from colorizer_core.imaging import (
    ACCEPTED_FORMATS,
    RESIZE_FILTER,
    BadImage,
    DecodedPhoto,
    decode_photo,
    file_suffixes,
)

Fit = Literal["stretch", "crop"]
Split = Literal["train", "val", "test"]
Status = Literal["kept", "converted", "dropped"]

SPLIT_FOLDERS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT_VERSION = 1
STAGING_NAME = ".building"
# What the source photo's name looks like in ../shared/datasets/photos: `water0_012.jpg`.
PHOTOS_SOURCE_PATTERN = r"^(.+)_(\d{3}|whole)\.jpg$"
# Its collection (one photographer, style or subject): the name's leading letters, `water` of `water0_012.jpg`.
PHOTOS_COLLECTION_PATTERN = r"^([a-z]+)"

# What the seed kept (JPEG, PNG, BMP) and WebP, a photo format scrapers often bring home: the service's
# formats less GIF (at most 256 colours makes a poor colour target) and TIFF (which the seed never took).
ALLOWED_FORMATS = ACCEPTED_FORMATS - {"GIF", "TIFF"}
ALLOWED_EXTENSIONS = file_suffixes(ALLOWED_FORMATS)  # .jpg, .jpeg, .png, .bmp, .webp and their rarer spellings
# Why a file was dropped, as the manifest has always named the service's kinds of bad image.
DROP_REASONS = {"unsupported_format": "bad_content", "too_many_pixels": "too_large", "corrupt_image": "corrupt"}
NAME_HEX_DIGITS = 16  # 64 random bits: collisions are checked anyway
OUTPUT_SUFFIX = ".png"  # lossless, so each x is exactly its y's convert("L")
PNG_COMPRESS_LEVEL = 1  # photos barely compress: level 6 gives the same size, 4x slower


class DatasetError(Exception):
    """A build refused or impossible; the message is one line for the user."""


class Dropped(Exception):
    """An input file left out of the dataset. ``reason`` is a short kind, ``detail`` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class BuildOptions:
    """Everything ``build_dataset`` can be told, with the seed's choices as defaults."""

    size: int = 200  # side of the square output images
    fit: Fit = "stretch"  # stretch: the seed's plain resize; crop: centre square crop, then resize
    test_per_category: int = 10  # images of each category in test_y
    seed: int | None = None  # None: drawn at random, and recorded in the manifest
    group_by_source: str | None = None  # regex; group 1 names a file's source photo
    # regex; group 1 names a file's collection. When set, whole collections go to val and test
    # (about these fractions of the source photos each) and test_per_category is not used.
    collection_of: str | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    force: bool = False  # replace a dataset already in OUT
    workers: int = min(8, os.cpu_count() or 1)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be at least 1. Received: size={self.size}")
        if self.fit not in ("stretch", "crop"):
            raise ValueError(f"fit must be 'stretch' or 'crop'. Received: fit={self.fit!r}")
        if self.test_per_category < 0:
            raise ValueError(
                f"test_per_category must be 0 or more. Received: test_per_category={self.test_per_category}"
            )
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1. Received: workers={self.workers}")
        for option in ("group_by_source", "collection_of"):
            _check_naming_regex(option, getattr(self, option))
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1):
            raise ValueError(
                "val_fraction and test_fraction must be in [0, 1) and leave photos for training. "
                f"Received: val_fraction={self.val_fraction}, test_fraction={self.test_fraction}"
            )


def _check_naming_regex(option: str, value: str | None) -> None:
    if value is None:
        return
    try:
        pattern = re.compile(value)
    except re.error as error:
        raise ValueError(f"{option} is not a valid regex ({error}). Received: {value!r}") from None
    if pattern.groups < 1:
        raise ValueError(f"{option} needs a group naming what it finds, like (.+). Received: {value!r}")


@dataclass(frozen=True)
class Entry:
    """What became of one input file: one line of the manifest."""

    source: str  # path relative to RAW, POSIX style
    status: Status
    category: str | None = None
    reason: str | None = None  # dropped: a short kind, e.g. "not_an_image"
    detail: str | None = None  # dropped: why, in words
    format: str | None = None  # the content's format as read, e.g. "JPEG"
    conversions: tuple[str, ...] = ()
    name: str | None = None  # the new name, shared by the x and y twins
    group: str | None = None  # source photo; files of one group share a split
    collection: str | None = None  # with --collection-of: collections share a split
    split: Split | None = None


# Step 1, scraping, is `dataset scrape` (trainer/dataset/scrape.py).


# Step 2. The seed made a backup; here RAW is never written to, and nothing may overlap it.
def check_paths(raw: Path, out: Path, *, force: bool) -> None:
    """Refuse, with a one-line reason, a RAW that holds nothing to build or an OUT that is taken."""
    if not raw.exists():
        raise DatasetError(f"RAW folder {raw} does not exist")
    if not raw.is_dir():
        raise DatasetError(f"RAW {raw} is not a folder")
    entries = list(raw.iterdir())
    if not entries:
        raise DatasetError(f"RAW folder {raw} is empty")
    categories = [path for path in entries if path.is_dir() and not path.name.startswith(".")]
    if not categories:
        raise DatasetError(f"RAW folder {raw} has no category folders (expected RAW/<category>/<images>)")
    if not any(path.is_file() for category in categories for path in category.iterdir()):
        raise DatasetError(f"the category folders in {raw} hold no files")
    raw, out = raw.resolve(), out.resolve()
    if out == raw or out.is_relative_to(raw):
        raise DatasetError(f"OUT {out} is inside RAW {raw}; RAW is never written to")
    if any(raw.is_relative_to(out / folder) for folder in SPLIT_FOLDERS):
        raise DatasetError(f"RAW {raw} is inside the dataset folders of OUT {out}")
    if out.exists() and not out.is_dir():
        raise DatasetError(f"OUT {out} is not a folder")
    if not force and any((out / name).exists() for name in (*SPLIT_FOLDERS, MANIFEST_NAME)):
        raise DatasetError(f"OUT {out} already holds a dataset; pass --force to replace it")


def list_inputs(raw: Path) -> list[PurePosixPath]:
    """Every file under RAW, as sorted paths relative to it."""
    return sorted(PurePosixPath(path.relative_to(raw).as_posix()) for path in raw.rglob("*") if path.is_file())


def category_of(source: PurePosixPath) -> str:
    """The category of a file at ``RAW/<category>/<file>``, or raise ``Dropped``."""
    if any(part.startswith(".") for part in source.parts):
        raise Dropped("hidden_file", "hidden file or folder")
    if len(source.parts) == 1:
        raise Dropped("outside_category", "not in a category folder")
    if len(source.parts) > 2:
        raise Dropped("nested_folder", "in a subfolder of a category folder")
    return source.parts[0]


# Steps 3 and 4. Decided by content as well as by name: an HTML page saved as .jpg is dropped.
def decode_allowed_image(filename: str, data: bytes) -> DecodedPhoto:
    """An image whose extension and content are both allowed types, as upright 8-bit RGB; or raise ``Dropped``.

    Transparency goes onto white, 16-bit images are scaled to 8 bits; ``conversions`` says what was
    done. Images over Pillow's decompression-bomb limit (about 89 Mpx) are dropped as too large.
    """
    extension = PurePosixPath(filename).suffix.lower()
    if extension not in ALLOWED_EXTENSIONS:
        raise Dropped("bad_extension", f"extension {extension or '(none)'!r} is not an allowed image type")
    try:
        return decode_photo(data, mode="RGB", formats=ALLOWED_FORMATS)
    except BadImage as error:
        raise Dropped(DROP_REASONS.get(error.kind, error.kind), error.message) from None


# Step 5.
def random_names(count: int, rng: random.Random) -> list[str]:
    """``count`` unique random file names like ``3f9c0a1be2d47c65.png``."""
    names: dict[str, None] = {}  # a set that keeps the drawing order
    while len(names) < count:
        names[f"{rng.getrandbits(4 * NAME_HEX_DIGITS):0{NAME_HEX_DIGITS}x}{OUTPUT_SUFFIX}"] = None
    return list(names)


# Step 6.
def resize(image: Image.Image, size: int, fit: Fit) -> Image.Image:
    """A ``size`` x ``size`` copy: stretched (the seed's) or a centre square crop."""
    if fit == "crop":
        return ImageOps.fit(image, (size, size), method=RESIZE_FILTER)
    return image.resize((size, size), RESIZE_FILTER)


# Step 7.
def source_group(filename: str, pattern: re.Pattern[str] | None) -> str:
    """The source photo a file comes from: group 1 of ``pattern``, else the file itself."""
    match = pattern.search(filename) if pattern else None
    return match.group(1) if match else filename


@dataclass(frozen=True)
class TestPick:
    """Step 7's choice: the names for test_y, and crops held out of both splits."""

    test: frozenset[str]
    # Crops of a source photo that went to test, beyond the category's quota: training on them
    # would leak that photo into train, so they are left out of the dataset.
    held_out: frozenset[str]


def pick_test(groups: Mapping[str, Mapping[str, Sequence[str]]], per_category: int, seed: int) -> TestPick:
    """``per_category`` random images of each category for test_y, whole source groups at a time.

    ``groups`` is category -> source group -> names. Groups are taken in a seeded random order
    until the quota is met; the group that crosses it gives the quota's remainder and the rest of
    its images are held out. A category with a single source keeps it for training. Each category
    draws from its own seeded generator, so one category's files never change another's split.
    """
    test: set[str] = set()
    held_out: set[str] = set()
    for category, by_source in groups.items():
        if len(by_source) < 2:
            continue
        rng = random.Random(f"{seed}/test/{category}")
        members = [list(by_source[source]) for source in sorted(by_source)]
        rng.shuffle(members)
        quota = per_category
        for names in members:
            if quota <= 0:
                break
            rng.shuffle(names)
            test.update(names[:quota])
            held_out.update(names[quota:])
            quota -= len(names)
    return TestPick(frozenset(test), frozenset(held_out))


def pick_by_collection(
    collections: Mapping[str, Mapping[str, Sequence[str]]], *, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, Split]:
    """Whole collections for val and test, about the given fractions of the source photos each.

    ``collections`` is collection -> source photo -> names. Collections are taken in a seeded random
    order; each goes to test, else val, if it fits in what that split still lacks, else to train.
    So the model is scored on photographers, styles and subjects it never trained on. Returns name -> split.
    """
    total_photos = sum(len(sources) for sources in collections.values())
    wanted: dict[Split, float] = {"test": test_fraction * total_photos, "val": val_fraction * total_photos}
    taken: Counter[str] = Counter()
    rng = random.Random(f"{seed}/collections")
    order = sorted(collections)
    rng.shuffle(order)
    split_of: dict[str, Split] = {}
    for collection in order:
        photos = len(collections[collection])
        split: Split = next(
            (held for held in ("test", "val") if taken[held] + photos <= wanted[held]), "train"
        )
        taken[split] += photos
        for names in collections[collection].values():
            split_of.update(dict.fromkeys(names, split))
    return split_of


# Step 8.
def assign_splits(kept: Sequence[Entry], test: Collection[str]) -> list[Entry]:
    """Test for the names picked in step 7, train for all the rest."""
    return [dataclasses.replace(entry, split="test" if entry.name in test else "train") for entry in kept]


# Steps 9 and 10.
def gray_copy(rgb: Image.Image) -> Image.Image:
    """The grayscale twin, as the seed made it."""
    return rgb.convert("L")


def dataset_fingerprint(out_dir: Path) -> str:
    """sha256 over the sorted (split folder, name, content sha256) of every file of a dataset."""
    lines = []
    for folder in SPLIT_FOLDERS:
        split_dir = out_dir / folder
        if not split_dir.is_dir() and folder.startswith("val_"):
            continue  # datasets built before the validation split
        if not split_dir.is_dir():
            raise FileNotFoundError(f"{split_dir} is missing: is {out_dir} a dataset built by `dataset build`?")
        for path in split_dir.iterdir():
            if path.is_file() and not path.name.startswith("."):
                lines.append(f"{folder}\t{path.name}\t{hashlib.sha256(path.read_bytes()).hexdigest()}\n")
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


@dataclass(frozen=True)
class BuildReport:
    """What ``build_dataset`` did."""

    out_dir: Path
    seed: int
    options: BuildOptions
    entries: tuple[Entry, ...]
    fingerprint: str

    def count(self, **fields: str) -> int:
        return sum(all(getattr(entry, key) == value for key, value in fields.items()) for entry in self.entries)

    def summary(self) -> str:
        """A few lines for the terminal."""
        options = self.options
        images = [entry for entry in self.entries if entry.status != "dropped"]
        dropped = Counter(entry.reason for entry in self.entries if entry.status == "dropped")
        per_category: dict[str, Counter[str]] = defaultdict(Counter)
        for entry in images:
            per_category[entry.category or ""][entry.split or ""] += 1
        width = max(map(len, per_category), default=0)
        lines = [
            f"dataset in {self.out_dir}: {len(images)} images from {len(self.entries)} files, "
            f"{len(per_category)} categories, {options.size}x{options.size} ({options.fit})",
            f"  {self.count(status='kept')} kept as they were, {self.count(status='converted')} converted, "
            f"{sum(dropped.values())} dropped"
            + (f" ({', '.join(f'{n} {reason}' for reason, n in sorted(dropped.items()))})" if dropped else ""),
            f"  train {self.count(split='train')}, val {self.count(split='val')}, test {self.count(split='test')}"
            + (f", whole source groups by {options.group_by_source}" if options.group_by_source else "")
            + (f", whole collections by {options.collection_of}" if options.collection_of else ""),
            *(
                f"    {category:<{width}}  train {counts['train']:>4}  val {counts['val']:>3}  test {counts['test']:>3}"
                for category, counts in sorted(per_category.items())
            ),
            f"  seed {self.seed} (--seed {self.seed} rebuilds this split)",
            f"  fingerprint {self.fingerprint}",
            f"  manifest {self.out_dir / MANIFEST_NAME}",
        ]
        return "\n".join(lines)


def build_dataset(
    raw: Path, out: Path, options: BuildOptions = BuildOptions(), *, progress: bool = True
) -> BuildReport:
    """Run the steps: RAW/<category>/* in, OUT/{train,test}_{x,y}/ and OUT/manifest.json out."""
    check_paths(raw, out, force=options.force)
    seed = options.seed if options.seed is not None else secrets.randbelow(2**32)
    sources = list_inputs(raw)
    names = random_names(len(sources), random.Random(f"{seed}/names"))
    pattern = re.compile(options.group_by_source) if options.group_by_source else None
    collection_pattern = re.compile(options.collection_of) if options.collection_of else None

    staging = out / STAGING_NAME
    shutil.rmtree(staging, ignore_errors=True)  # left by a build that was killed
    for folder in ("pool_x", "pool_y"):
        (staging / folder).mkdir(parents=True)
    process = functools.partial(
        _process_file, raw, staging=staging, options=options, pattern=pattern, collection_pattern=collection_pattern
    )
    try:
        with ThreadPoolExecutor(options.workers) as pool:  # PIL releases the GIL while it decodes and encodes
            work = pool.map(process, sources, names)
            entries = list(tqdm(work, total=len(sources), desc="dataset", unit="file", disable=not progress))
        kept = [entry for entry in entries if entry.status != "dropped"]
        if not kept:
            raise DatasetError(f"none of the {len(entries)} files in {raw} is a usable image")

        if collection_pattern is not None:
            split_of = _split_by_collection(kept, options, seed)
        else:
            entries, split_of = _split_by_category(entries, options, seed)
        entries = [dataclasses.replace(entry, split=split_of.get(entry.name or "")) for entry in entries]
        _sort_into_splits(staging, split_of)

        fingerprint = dataset_fingerprint(staging)
        report = BuildReport(out, seed, options, tuple(entries), fingerprint)
        (staging / MANIFEST_NAME).write_text(json.dumps(_manifest(raw, report), indent=1) + "\n")
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _split_by_collection(kept: Sequence[Entry], options: BuildOptions, seed: int) -> dict[str, Split]:
    collections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for entry in kept:
        collections[entry.collection][entry.group].append(entry.name)
    return pick_by_collection(
        collections, val_fraction=options.val_fraction, test_fraction=options.test_fraction, seed=seed
    )


def _split_by_category(
    entries: list[Entry], options: BuildOptions, seed: int
) -> tuple[list[Entry], dict[str, Split]]:
    """The seed's split: ``test_per_category`` of each category; held-out crops become dropped entries."""
    kept = [entry for entry in entries if entry.status != "dropped"]
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for entry in kept:
        groups[entry.category][entry.group].append(entry.name)
    pick = pick_test(groups, options.test_per_category, seed)
    entries = [_hold_out(entry) if entry.name in pick.held_out else entry for entry in entries]
    kept = [entry for entry in entries if entry.status != "dropped"]
    return entries, {entry.name: entry.split for entry in assign_splits(kept, pick.test)}


def _process_file(
    raw: Path,
    source: PurePosixPath,
    name: str,
    *,
    staging: Path,
    options: BuildOptions,
    pattern: re.Pattern[str] | None,
    collection_pattern: re.Pattern[str] | None,
) -> Entry:
    """Steps 3-6, 9 and 10 for one file: its colour and gray twins go to staging/pool_{y,x}/."""
    category = None
    try:
        category = category_of(source)
        photo = decode_allowed_image(source.name, (raw / source).read_bytes())
    except Dropped as dropped:
        return Entry(str(source), "dropped", category=category, reason=dropped.reason, detail=dropped.detail)
    target = resize(photo.image, options.size, options.fit)
    target.save(staging / "pool_y" / name, compress_level=PNG_COMPRESS_LEVEL)
    gray_copy(target).save(staging / "pool_x" / name, compress_level=PNG_COMPRESS_LEVEL)
    return Entry(
        str(source),
        "converted" if photo.conversions else "kept",
        category=category,
        format=photo.format,
        conversions=photo.conversions,
        name=name,
        group=source_group(source.name, pattern),
        collection=source_group(source.name, collection_pattern) if collection_pattern else None,
    )


def _hold_out(entry: Entry) -> Entry:
    return dataclasses.replace(
        entry,
        status="dropped",
        reason="source_in_test",
        name=None,
        detail=f"a crop of {entry.group}, which is in test_y; kept out of train so the split shares no source photo",
    )


def _sort_into_splits(staging: Path, split_of: Mapping[str, Split | None]) -> None:
    """Move each twin from the pool into its split's folder."""
    for folder in SPLIT_FOLDERS:
        (staging / folder).mkdir()
    for name, split in split_of.items():
        for kind in ("x", "y"):
            (staging / f"pool_{kind}" / name).replace(staging / f"{split}_{kind}" / name)


def _move_into_place(staging: Path, out: Path) -> None:
    """Replace OUT's dataset (if any: ``check_paths`` allowed it) with the one built in staging."""
    for name in (*SPLIT_FOLDERS, MANIFEST_NAME):
        old = out / name
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        elif old.exists() or old.is_symlink():
            old.unlink()
        (staging / name).replace(old)


def _manifest(raw: Path, report: BuildReport) -> dict[str, object]:
    options = report.options
    return {
        "format_version": MANIFEST_FORMAT_VERSION,
        "fingerprint": report.fingerprint,
        "raw": str(raw.resolve()),
        "options": {
            "size": options.size,
            "fit": options.fit,
            "test_per_category": options.test_per_category,
            "seed": report.seed,
            "group_by_source": options.group_by_source,
            "collection_of": options.collection_of,
            "val_fraction": options.val_fraction,
            "test_fraction": options.test_fraction,
        },
        "counts": {
            "files": len(report.entries),
            **{status: report.count(status=status) for status in ("kept", "converted", "dropped")},
            **{split: report.count(split=split) for split in ("train", "val", "test")},
        },
        "files": [dataclasses.asdict(entry) for entry in report.entries],
    }
