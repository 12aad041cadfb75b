"""The dataset builder: each of the seed's steps, the whole build, its refusals, and scraping."""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import sys
import types
import urllib.error
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from photo_folders import write_photos
from PIL import Image
from typer.testing import CliRunner

from colorizer_trainer.dataset.build import (
    MANIFEST_NAME,
    PHOTOS_COLLECTION_PATTERN,
    PHOTOS_SOURCE_PATTERN,
    STAGING_NAME,
    BuildOptions,
    DatasetError,
    Dropped,
    Entry,
    assign_splits,
    build_dataset,
    dataset_fingerprint,
    decode_allowed_image,
    gray_copy,
    pick_by_collection,
    pick_test,
    random_names,
    resize,
    source_group,
)
from colorizer_trainer.dataset.cli import app
from colorizer_trainer.dataset.scrape import ScrapeError, ScrapeOptions, scrape

SIZE = 16  # output side; small keeps the builds quick
TEST_PER_CATEGORY = 2
SOURCES = {"beach": 4, "city": 5}  # category -> source photos, each cut into CROPS files
CROPS = 3
DIRTY = {  # file in beach -> what the build must do with it: a drop reason, or "converted"/"kept"
    "transparent.png": "converted",
    "palette.png": "converted",
    "gray.jpg": "converted",
    "cmyk.jpg": "converted",
    "deep.png": "converted",
    "photo.webp": "kept",
    "LOUD.JPG": "kept",
    "anim.gif": "bad_extension",
    "page.jpg": "not_an_image",
    "log.txt": "bad_extension",
    "cut.jpg": "corrupt",
}


def photo(seed: int, size: tuple[int, int] = (40, 30)) -> Image.Image:
    """A small colourful RGB image, different for each seed."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def transparent_red(mode: str) -> Image.Image:
    return Image.new("RGBA", (8, 8), (255, 0, 0, 0)).convert(mode)


def dirty_bytes(name: str) -> bytes:
    """The files a scraper brings home, by the names in DIRTY."""
    return {
        "transparent.png": lambda: encode(transparent_red("RGBA"), "PNG"),
        "palette.png": lambda: encode(photo(1).convert("P"), "PNG"),
        "gray.jpg": lambda: encode(photo(2).convert("L"), "JPEG"),
        "cmyk.jpg": lambda: encode(photo(3).convert("CMYK"), "JPEG"),
        "deep.png": lambda: encode(Image.fromarray(np.full((30, 40), 40000, np.uint16)), "PNG"),
        "photo.webp": lambda: encode(photo(4), "WEBP"),
        "LOUD.JPG": lambda: encode(photo(5), "JPEG"),
        "anim.gif": lambda: encode(photo(6).convert("P"), "GIF"),
        "page.jpg": lambda: b"<!DOCTYPE html><html><body>Access denied</body></html>",
        "log.txt": lambda: b"downloaded 7 images\n",
        "cut.jpg": lambda: encode(photo(7), "JPEG")[:300],
    }[name]()


def source_crops(prefix: str, sources: int, crops: int, first_seed: int) -> dict[str, Image.Image]:
    """RAW's files ``<prefix><source>_<crop>.jpg`` (crops of each source photo), each a photo of its own."""
    return {
        f"{prefix}{source}_{crop:03d}.jpg": photo(first_seed + 10 * source + crop)
        for source in range(sources)
        for crop in range(crops)
    }


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    """RAW/<category>/: crops of a few source photos per category, plus dirty files in beach."""
    root = tmp_path / "raw"
    for index, (category, sources) in enumerate(SOURCES.items()):
        write_photos(root / category, source_crops(category, sources, CROPS, first_seed=1000 * index))
    for name in DIRTY:
        (root / "beach" / name).write_bytes(dirty_bytes(name))
    return root


def options(**changes: object) -> BuildOptions:
    defaults = {"size": SIZE, "test_per_category": TEST_PER_CATEGORY, "seed": 7, "workers": 2}
    return BuildOptions(**{**defaults, **changes})


@pytest.fixture
def built(raw: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    build_dataset(raw, out, options(), progress=False)
    return out


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST_NAME).read_text())


def kept_entries(out: Path) -> list[dict]:
    return [entry for entry in manifest(out)["files"] if entry["status"] != "dropped"]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``folder`` with its content hash and modification time."""
    return {
        str(path.relative_to(folder)): (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder",
            path.stat().st_mtime_ns,
        )
        for path in folder.rglob("*")
    }


def invoke(*args: str):
    return CliRunner().invoke(app, [str(arg) for arg in args])


# Steps 3 and 4: allowed types, decided by content as well as by name, decoded to upright RGB.


@pytest.mark.parametrize(
    ("filename", "data", "reason"),
    [
        ("page.jpg", b"<html><body>Not found</body></html>", "not_an_image"),
        ("notes.txt", b"hello", "bad_extension"),
        ("photo", encode(photo(0), "JPEG"), "bad_extension"),
        ("anim.gif", encode(photo(0).convert("P"), "GIF"), "bad_extension"),
        ("scan.tiff", encode(photo(0), "TIFF"), "bad_extension"),
        ("disguised.png", encode(photo(0).convert("P"), "GIF"), "bad_content"),
        ("empty.jpg", b"", "empty_file"),
        ("cut.jpg", encode(photo(0), "JPEG")[:300], "corrupt"),
    ],
)
def test_decode_allowed_image_drops_files_by_extension_and_content(filename: str, data: bytes, reason: str) -> None:
    with pytest.raises(Dropped) as dropped:
        decode_allowed_image(filename, data)
    assert dropped.value.reason == reason
    assert dropped.value.detail


def test_decode_allowed_image_drops_images_over_pillows_pixel_limit_as_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 30 - 1)
    with pytest.raises(Dropped) as dropped:
        decode_allowed_image("big.png", encode(photo(0), "PNG"))
    assert dropped.value.reason == "too_large"


@pytest.mark.parametrize(
    ("filename", "fmt"),
    [
        ("a.jpg", "JPEG"),
        ("a.JPEG", "JPEG"),
        ("a.png", "PNG"),
        ("a.bmp", "BMP"),
        ("a.webp", "WEBP"),
        ("a.jpg", "PNG"),  # mislabelled, but both are allowed types
    ],
)
def test_decode_allowed_image_reads_allowed_types_as_they_are(filename: str, fmt: str) -> None:
    decoded = decode_allowed_image(filename, encode(photo(0), fmt))
    assert decoded.format == fmt
    assert (decoded.image.mode, decoded.image.size) == ("RGB", (40, 30))
    assert decoded.conversions == ()


@pytest.mark.parametrize(
    ("image", "conversion"),
    [
        (transparent_red("RGBA"), "RGBA with transparency onto white, to RGB"),
        (photo(0).convert("L"), "grayscale (L) to RGB"),
        (Image.fromarray(np.full((8, 8), 40000, np.uint16)), "I;16 (more than 8 bits) to RGB"),
    ],
    ids=["rgba", "gray", "16-bit"],
)
def test_decode_allowed_image_says_what_it_converted(image: Image.Image, conversion: str) -> None:
    decoded = decode_allowed_image("converted.png", encode(image, "PNG"))
    assert decoded.image.mode == "RGB"
    assert decoded.conversions == (conversion,)


def test_decode_allowed_image_turns_exif_rotated_photos_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    decoded = decode_allowed_image("turned.jpg", encode(photo(0), "JPEG", exif=exif))
    assert decoded.image.size == (30, 40)
    assert decoded.conversions == ("turned upright (EXIF orientation 6)",)


# Step 5: unique random names.


def test_random_names_are_unique_hex_pngs_reproducible_by_seed() -> None:
    names = random_names(500, random.Random(1))
    assert len(set(names)) == 500
    assert all(re.fullmatch(r"[0-9a-f]{16}\.png", name) for name in names)
    assert random_names(500, random.Random(1)) == names
    assert random_names(500, random.Random(2)) != names


# Step 6: resize.


def framed_red(size: tuple[int, int]) -> Image.Image:
    """Red in the centre square, blue bands on the long sides."""
    image = Image.new("RGB", size, (0, 0, 255))
    side = min(size)
    left, top = (size[0] - side) // 2, (size[1] - side) // 2
    image.paste((255, 0, 0), (left, top, left + side, top + side))
    return image


@pytest.mark.parametrize(("fit", "edge_is_blue"), [("stretch", True), ("crop", False)])
def test_resize_stretches_or_crops_to_a_square(fit: str, edge_is_blue: bool) -> None:
    resized = resize(framed_red((90, 30)), 20, fit)
    assert resized.size == (20, 20)
    red, _, blue = resized.getpixel((0, 10))
    assert (blue > red) is edge_is_blue
    assert resized.getpixel((10, 10)) == (255, 0, 0)


# Steps 7 and 8: the split.


@pytest.mark.parametrize(
    ("filename", "pattern", "group"),
    [
        ("water0_012.jpg", PHOTOS_SOURCE_PATTERN, "water0"),
        ("gcexplore_monuments_0007_whole.jpg", PHOTOS_SOURCE_PATTERN, "gcexplore_monuments_0007"),
        ("scraped_3.png", PHOTOS_SOURCE_PATTERN, "scraped_3.png"),
        ("water0_012.jpg", None, "water0_012.jpg"),
    ],
)
def test_source_group_is_group_one_or_the_file_itself(filename: str, pattern: str | None, group: str) -> None:
    assert source_group(filename, re.compile(pattern) if pattern else None) == group


def singletons(categories: dict[str, int]) -> dict[str, dict[str, list[str]]]:
    return {
        category: {f"{category}{i}": [f"{category}{i}.png"] for i in range(count)}
        for category, count in categories.items()
    }


def test_pick_test_takes_n_random_images_of_each_category_reproducibly() -> None:
    groups = singletons({"beach": 50, "city": 30, "farm": 4})
    pick = pick_test(groups, 10, seed=1)
    per_category = {
        category: sum(name in pick.test for names in by_source.values() for name in names)
        for category, by_source in groups.items()
    }
    assert per_category == {"beach": 10, "city": 10, "farm": 4}  # a small category goes to test whole, as in the seed
    assert not pick.held_out
    assert pick_test(groups, 10, seed=1) == pick
    assert pick_test(groups, 10, seed=2) != pick


def test_pick_test_of_one_category_ignores_the_others() -> None:
    beach = pick_test(singletons({"beach": 50}), 10, seed=1).test
    assert pick_test(singletons({"beach": 50, "city": 30}), 10, seed=1).test >= beach


def test_pick_test_never_splits_a_source_between_test_and_train() -> None:
    groups = {"beach": {f"src{i}": [f"src{i}_{crop}.png" for crop in range(3)] for i in range(10)}}
    pick = pick_test(groups, 10, seed=3)
    assert len(pick.test) == 10 and len(pick.held_out) == 2  # 3 + 3 + 3 + 1, two crops of the 4th held out
    for names in groups["beach"].values():
        assert set(names) <= pick.test | pick.held_out or not set(names) & (pick.test | pick.held_out)


def test_pick_test_cuts_a_big_source_to_the_quota_and_holds_out_the_rest() -> None:
    groups = {"landscape": {"a": [f"a{i}" for i in range(50)], "b": [f"b{i}" for i in range(50)]}}
    pick = pick_test(groups, 10, seed=0)
    assert len(pick.test) == 10 and len(pick.held_out) == 40
    assert len({name[0] for name in pick.test | pick.held_out}) == 1  # all from one source


def test_pick_test_keeps_a_single_source_category_for_training() -> None:
    pick = pick_test({"beach": {"beach0": [f"{i}" for i in range(100)]}}, 10, seed=0)
    assert not pick.test and not pick.held_out


def test_assign_splits_puts_the_picked_in_test_and_the_rest_in_train() -> None:
    kept = [Entry(f"beach/{i}.jpg", "kept", category="beach", name=f"{i}.png") for i in range(4)]
    splits = {entry.name: entry.split for entry in assign_splits(kept, {"1.png", "3.png"})}
    assert splits == {"0.png": "train", "1.png": "test", "2.png": "train", "3.png": "test"}


# Steps 9 and 10: gray twins.


def test_gray_copy_is_pils_convert_l() -> None:
    image = photo(0)
    assert gray_copy(image).mode == "L"
    assert np.array_equal(np.asarray(gray_copy(image)), np.asarray(image.convert("L")))


# The whole build.


def test_build_writes_the_seeds_layout_with_gray_twins(built: Path) -> None:
    for split in ("train", "test"):
        x_names = sorted(path.name for path in (built / f"{split}_x").iterdir())
        y_names = sorted(path.name for path in (built / f"{split}_y").iterdir())
        assert x_names == y_names and x_names
        for name in y_names:
            with Image.open(built / f"{split}_y" / name) as colour, Image.open(built / f"{split}_x" / name) as gray:
                assert (colour.mode, gray.mode) == ("RGB", "L")
                assert colour.size == gray.size == (SIZE, SIZE)
                assert np.array_equal(np.asarray(gray), np.asarray(colour.convert("L")))
    tests_per_category = defaultdict(int)
    for entry in kept_entries(built):
        tests_per_category[entry["category"]] += entry["split"] == "test"
    assert tests_per_category == {category: TEST_PER_CATEGORY for category in SOURCES}
    assert not (built / STAGING_NAME).exists()


def test_build_manifest_accounts_for_every_input_file(raw: Path, built: Path) -> None:
    files = {entry["source"]: entry for entry in manifest(built)["files"]}
    assert set(files) == {path.relative_to(raw).as_posix() for path in raw.rglob("*") if path.is_file()}
    for name, fate in DIRTY.items():
        entry = files[f"beach/{name}"]
        if fate in ("kept", "converted"):
            assert entry["status"] == fate
            assert bool(entry["conversions"]) == (fate == "converted")
        else:
            assert (entry["status"], entry["reason"]) == ("dropped", fate)
            assert entry["name"] is None
    on_disk = {path.name: folder for folder in ("train_y", "test_y") for path in (built / folder).iterdir()}
    for entry in files.values():
        if entry["status"] != "dropped":
            assert entry["category"] == entry["source"].split("/")[0]
            assert on_disk[entry["name"]] == f"{entry['split']}_y"
            assert entry["group"] == entry["source"].split("/")[1]
    assert len(on_disk) == len(kept_entries(built))


def test_build_never_modifies_raw(raw: Path, tmp_path: Path) -> None:
    before = snapshot(raw)
    build_dataset(raw, tmp_path / "out", options(), progress=False)
    assert snapshot(raw) == before


def test_build_with_the_same_seed_gives_the_same_names_and_split(
    raw: Path, built: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    build_dataset(raw, again, options(), progress=False)
    assert kept_entries(again) == kept_entries(built)
    assert dataset_fingerprint(again) == dataset_fingerprint(built)

    other = tmp_path / "other"
    build_dataset(raw, other, options(seed=8), progress=False)
    assert {e["source"] for e in kept_entries(other) if e["split"] == "test"} != {
        e["source"] for e in kept_entries(built) if e["split"] == "test"
    }


def test_build_without_a_seed_records_the_one_it_drew(raw: Path, tmp_path: Path) -> None:
    report = build_dataset(raw, tmp_path / "out", options(seed=None), progress=False)
    assert manifest(tmp_path / "out")["options"]["seed"] == report.seed
    build_dataset(raw, tmp_path / "again", options(seed=report.seed), progress=False)
    assert kept_entries(tmp_path / "again") == kept_entries(tmp_path / "out")


def test_build_group_by_source_keeps_each_source_on_one_side(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_dataset(raw, out, options(group_by_source=PHOTOS_SOURCE_PATTERN, test_per_category=4), progress=False)
    splits_of_group = defaultdict(set)
    tests = defaultdict(int)
    for entry in kept_entries(out):
        splits_of_group[(entry["category"], entry["group"])].add(entry["split"])
        tests[entry["category"]] += entry["split"] == "test"
    assert all(len(splits) == 1 for splits in splits_of_group.values())
    assert ("city", "city0") in splits_of_group
    assert tests == {"beach": 4, "city": 4}  # city's groups of 3: one whole, one cut to 1
    held_out = [entry for entry in manifest(out)["files"] if entry.get("reason") == "source_in_test"]
    assert held_out and all(entry["status"] == "dropped" for entry in held_out)
    assert all(splits_of_group[(entry["category"], entry["group"])] == {"test"} for entry in held_out)


def collections_raw(root: Path) -> Path:
    """RAW with photos of six collections (`lake`, `park`, ...), two source photos each, two crops each."""
    for index, collection in enumerate(("lake", "park", "road", "snow", "farm", "town")):
        category = "nature" if index % 2 else "places"
        write_photos(root / category, source_crops(collection, sources=2, crops=2, first_seed=100 * index))
    return root


def test_split_by_collection_keeps_each_collection_on_one_side(tmp_path: Path) -> None:
    out = tmp_path / "out"
    raw = collections_raw(tmp_path / "raw")
    by_collection = options(
        group_by_source=PHOTOS_SOURCE_PATTERN, collection_of=PHOTOS_COLLECTION_PATTERN, val_fraction=0.2, test_fraction=0.2
    )
    report = build_dataset(raw, out, by_collection, progress=False)
    splits_of_collection = defaultdict(set)
    for entry in kept_entries(out):
        splits_of_collection[entry["collection"]].add(entry["split"])
    assert set(splits_of_collection) == {"lake", "park", "road", "snow", "farm", "town"}
    assert all(len(splits) == 1 for splits in splits_of_collection.values())
    # 12 photos: a fifth is 2.4, so one collection of 2 photos each for val and test.
    assert sorted(split for (split,) in splits_of_collection.values()) == ["test", "train", "train", "train", "train", "val"]
    assert {path.parent.name for path in out.glob("*/*.png")} == {"train_x", "train_y", "val_x", "val_y", "test_x", "test_y"}
    assert report.count(split="val") == 4 and manifest(out)["counts"]["val"] == 4
    assert manifest(out)["options"]["collection_of"] == PHOTOS_COLLECTION_PATTERN


def test_pick_by_collection_fills_held_out_splits_without_exceeding_their_share() -> None:
    collections = {f"c{index}": {f"c{index}-{photo}": [f"c{index}-{photo}.png"] for photo in range(index + 1)} for index in range(8)}
    split_of = pick_by_collection(collections, val_fraction=0.2, test_fraction=0.1, seed=3)
    photos = defaultdict(int)
    for split in split_of.values():
        photos[split] += 1
    assert 0 < photos["test"] <= 0.1 * 36 and 0 < photos["val"] <= 0.2 * 36
    assert pick_by_collection(collections, val_fraction=0.2, test_fraction=0.1, seed=3) == split_of  # seeded


def test_fingerprint_in_the_manifest_matches_the_files_and_changes_with_them(built: Path) -> None:
    fingerprint = manifest(built)["fingerprint"]
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint)
    assert dataset_fingerprint(built) == fingerprint
    some_file = next((built / "train_y").iterdir())
    photo(99, (SIZE, SIZE)).save(some_file, "PNG")
    assert dataset_fingerprint(built) != fingerprint


def test_dataset_fingerprint_refuses_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train_x"):
        dataset_fingerprint(tmp_path)


def test_build_refuses_raw_without_a_usable_image(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "beach").mkdir(parents=True)
    (raw / "beach" / "page.jpg").write_text("<html></html>")
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match="none of the 1 files"):
        build_dataset(raw, out, options(), progress=False)
    assert list(out.iterdir()) == []


def test_force_replaces_an_existing_dataset(raw: Path, built: Path) -> None:
    old_names = {path.name for path in (built / "train_y").iterdir()}
    (built / "notes.md").write_text("mine")
    build_dataset(raw, built, options(seed=8, force=True), progress=False)
    assert {path.name for path in (built / "train_y").iterdir()}.isdisjoint(old_names)
    assert manifest(built)["options"]["seed"] == 8
    assert (built / "notes.md").read_text() == "mine"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": 0}, "size"),
        ({"fit": "squash"}, "fit"),
        ({"test_per_category": -1}, "test_per_category"),
        ({"workers": 0}, "workers"),
        ({"group_by_source": "(unclosed"}, "not a valid regex"),
        ({"group_by_source": r"_\d{3}"}, "needs a group"),
        ({"collection_of": "([a-z"}, "collection_of is not a valid regex"),
        ({"collection_of": "[a-z]+"}, "collection_of needs a group"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "leave photos for training"),
    ],
)
def test_build_options_refuse_bad_values(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        options(**change)


# The command line.


def test_cli_build_prints_a_summary(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("build", raw, out, "--size", SIZE, "--fit", "crop", "--test-per-category", 1, "--seed", 3)
    assert result.exit_code == 0, result.output
    assert "train " in result.stdout and "test " in result.stdout
    assert f"fingerprint {dataset_fingerprint(out)}" in result.stdout
    recorded = manifest(out)["options"]
    assert (recorded["size"], recorded["fit"], recorded["seed"]) == (SIZE, "crop", 3)
    assert recorded["test_per_category"] == 1


def make_refused_case(case: str, tmp_path: Path, raw: Path) -> tuple[Path, Path]:
    """RAW and OUT paths for each way ``dataset build`` must refuse."""
    out = tmp_path / "out"
    if case == "missing":
        return tmp_path / "nowhere", out
    if case == "a file":
        (tmp_path / "file.jpg").write_bytes(b"x")
        return tmp_path / "file.jpg", out
    if case == "empty":
        (tmp_path / "empty").mkdir()
        return tmp_path / "empty", out
    if case == "no categories":
        write_photos(tmp_path / "flat", {"a.jpg": photo(0)})
        return tmp_path / "flat", out
    if case == "empty categories":
        (tmp_path / "hollow" / "beach").mkdir(parents=True)
        return tmp_path / "hollow", out
    if case == "out inside raw":
        return raw, raw / "dataset"
    if case == "out holds a dataset":
        build_dataset(raw, out, options(), progress=False)
        return raw, out
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "does not exist"),
        ("a file", "is not a folder"),
        ("empty", "is empty"),
        ("no categories", "has no category folders"),
        ("empty categories", "hold no files"),
        ("out inside raw", "is inside RAW"),
        ("out holds a dataset", "already holds a dataset; pass --force"),
    ],
)
def test_cli_build_refuses_with_a_one_line_reason(case: str, message: str, raw: Path, tmp_path: Path) -> None:
    raw_dir, out = make_refused_case(case, tmp_path, raw)
    before = snapshot(tmp_path)
    result = invoke("build", raw_dir, out, "--size", SIZE)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert snapshot(tmp_path) == before


def test_cli_build_refuses_a_bad_group_regex(raw: Path, tmp_path: Path) -> None:
    result = invoke("build", raw, tmp_path / "out", "--group-by-source", "(unclosed")
    assert result.exit_code == 1
    assert "not a valid regex" in result.stderr
    assert not (tmp_path / "out").exists()


# Scraping: bing-image-downloader stands in for the network, which tests never touch.


@pytest.fixture
def downloader(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Installs a stand-in ``bing_image_downloader`` that writes two small JPEGs per query the way
    the real one lays them out, and records each call; ``fails_with`` makes it raise instead."""
    state = types.SimpleNamespace(calls=[], fails_with=None)

    def download(query: str, **kwargs: object) -> None:
        state.calls.append((query, kwargs))
        folder = Path(str(kwargs["output_dir"])) / query
        folder.mkdir(parents=True, exist_ok=True)
        if state.fails_with:
            raise state.fails_with
        for index in (1, 2):
            photo(index).save(folder / f"Image_{index}.jpg")

    module = types.ModuleType("bing_image_downloader.downloader")
    module.download = download
    package = types.ModuleType("bing_image_downloader")
    package.downloader = module
    monkeypatch.setitem(sys.modules, "bing_image_downloader", package)
    monkeypatch.setitem(sys.modules, "bing_image_downloader.downloader", module)
    return state


def test_scrape_calls_the_downloader_as_the_seed_did(downloader: types.SimpleNamespace, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    result = invoke("scrape", "beach", "city", "--limit", 5, "--out", raw)
    assert result.exit_code == 0, result.output
    assert [query for query, _ in downloader.calls] == ["beach", "city"]
    _, kwargs = downloader.calls[0]
    assert kwargs == {
        "limit": 5,
        "output_dir": str(raw),
        "adult_filter_off": True,
        "force_replace": False,
        "timeout": 60,
        "verbose": False,
    }
    assert f"{raw / 'beach'}: 2 files" in result.stdout
    report = build_dataset(raw, tmp_path / "out", options(test_per_category=1), progress=False)
    assert report.count(split="test") == 2


def test_scrape_without_network_fails_clearly(downloader: types.SimpleNamespace, tmp_path: Path) -> None:
    downloader.fails_with = urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    result = invoke("scrape", "beach", "--out", tmp_path / "raw")
    assert result.exit_code == 1
    assert "could not download 'beach' from Bing (is there network access?)" in result.stderr
    assert list((tmp_path / "raw").iterdir()) == []  # no empty category folder left behind


def test_scrape_without_the_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "bing_image_downloader", None)  # makes the import fail
    result = invoke("scrape", "beach", "--out", tmp_path / "raw")
    assert result.exit_code == 1
    assert "pip install 'colorizer[scrape]'" in result.stderr
    assert not (tmp_path / "raw").exists()
    with pytest.raises(ScrapeError):
        scrape(["beach"], tmp_path / "raw", ScrapeOptions(), progress=False)


@pytest.mark.parametrize("category", ["a/b", "..", ".hidden", "", "what?"])
def test_scrape_refuses_a_category_that_is_not_a_folder_name(
    category: str, downloader: types.SimpleNamespace, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="plain folder name"):
        scrape([category], tmp_path / "raw", progress=False)
    assert downloader.calls == []
