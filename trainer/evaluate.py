"""Score a colorizer on a dataset's test split: per-image metrics, palette divergence, a picture grid.

Each photo of ``DATA/test_x`` is colorized exactly as the service does it (``colorize_images``: the
model sees it at its native size and its colour lands on the photo's own luminance) and compared
with its twin of the same name in ``DATA/test_y``. The same loop scores the "gray input" baseline,
which needs no model, so a results table can set a model beside doing nothing at all.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from colorizer_core.imaging import colorize_images, to_grayscale
from colorizer_core.inference import load_model
from colorizer_trainer import image_quality
from colorizer_trainer.data import LUMA_WEIGHTS, PhotoGroups, UnreadableImage
from colorizer_trainer.samples import save_grid

BATCH_SIZE = 16
GRID_ROWS = 6

# The table's columns: result key, header, number format. Arrows say which way is better.
COLUMNS = (
    ("images", "images", "{:.0f}"),
    ("psnr", "PSNR dB ↑", "{:.2f}"),
    ("ssim", "SSIM ↑", "{:.3f}"),
    ("ciede2000", "ΔE2000 ↓", "{:.2f}"),
    ("ciede2000_by_collection", "ΔE2000 per collection ↓", "{:.2f}"),
    ("colorfulness", "colourfulness", "{:.1f}"),
    ("truth_colorfulness", "truth colourfulness", "{:.1f}"),
    ("colorfulness_ratio", "colourfulness / truth", "{:.2f}"),
    ("palette_js", "palette JS bits ↓", "{:.3f}"),
)

Colorize = Callable[[Sequence[Image.Image]], list[Image.Image]]

# How films record colour as gray: weights on red, green and blue (gamma-encoded, as PIL's convert("L")
# weighs them). Old photos were rarely taken on film that saw as the eye does.
FILM_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "luma": LUMA_WEIGHTS,  # BT.601, the eye's: how the dataset's gray twins are made
    "average": (1 / 3, 1 / 3, 1 / 3),
    "orthochromatic": (0.05, 0.45, 0.50),  # nearly blind to red, as most plates and films before the 1920s
    "red-filter": (0.60, 0.30, 0.10),  # panchromatic film behind a red filter: dark skies and foliage
}


@dataclass(frozen=True)
class PhotoPair:
    gray_path: Path  # DATA/test_x/NAME.png
    truth_path: Path  # DATA/test_y/NAME.png
    collection: str | None = None  # from the dataset's manifest, where it says


def find_pairs(
    data_dir: Path, *, split: str = "test", limit: int | None = None, per_photo: int | None = None
) -> list[PhotoPair]:
    """The photos of a split in name order, each gray copy with its colour twin.

    ``per_photo``: at most this many files of each source photo (the first by name), so a photo
    cropped a hundred times weighs no more than one kept whole.
    """
    gray_dir, truth_dir = Path(data_dir) / f"{split}_x", Path(data_dir) / f"{split}_y"
    gray_paths = sorted(gray_dir.glob("*.png"))
    if not gray_paths:
        raise FileNotFoundError(f"No {split} photos: {gray_dir} holds no *.png")
    groups = PhotoGroups.read(data_dir)
    if per_photo is not None:
        gray_paths = _at_most_per_photo(gray_paths, groups, per_photo)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1. Received: {limit}")
        gray_paths = gray_paths[:limit]
    missing = [path.name for path in gray_paths if not (truth_dir / path.name).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} test photos have no twin in {truth_dir}, e.g. {missing[0]}")
    return [
        PhotoPair(path, truth_dir / path.name, groups.collection_of.get(groups.photo(path.name)))
        for path in gray_paths
    ]


def load_pair(pair: PhotoPair, film: str | None = None) -> tuple[Image.Image, Image.Image]:
    """The gray photo (``L``) and its true colours (``RGB``); with a ``film`` (``FILM_WEIGHTS``), the
    gray is remade from the truth as that film records it."""
    truth = _open(pair.truth_path, lambda image: image.convert("RGB"))
    if film is not None:
        return film_gray(truth, FILM_WEIGHTS[film]), truth
    gray = _open(pair.gray_path, to_grayscale)
    if gray.size != truth.size:
        raise ValueError(f"{pair.gray_path.name}: gray is {gray.size} but its twin is {truth.size}")
    return gray, truth


def film_gray(truth: Image.Image, weights: Sequence[float]) -> Image.Image:
    """``truth`` in gray, as a film that weighs red, green and blue so records it."""
    rgb = np.asarray(truth, dtype=np.float32)
    return Image.fromarray(np.clip(rgb @ np.asarray(weights, np.float32), 0, 255).round().astype(np.uint8), "L")


def _open(path: Path, convert: Callable[[Image.Image], Image.Image]) -> Image.Image:
    try:
        with Image.open(path) as image:
            return convert(image)
    except OSError as error:  # PIL's unidentified and truncated images are OSErrors
        raise UnreadableImage(
            f"{path} cannot be read ({error}). Delete it and its twin, or rebuild the dataset with `colorize-train dataset build`."
        ) from None


def _at_most_per_photo(paths: list[Path], groups: PhotoGroups, per_photo: int) -> list[Path]:
    taken: Counter[str] = Counter()
    kept = []
    for path in paths:
        photo = groups.photo(path.name)
        taken[photo] += 1
        if taken[photo] <= per_photo:
            kept.append(path)
    return kept


def image_scores(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """One prediction's metrics against its truth (both ``(H, W, 3)`` uint8 RGB)."""
    return {
        "psnr": image_quality.psnr(predicted, true),
        "ssim": image_quality.ssim(predicted, true),
        "ciede2000": image_quality.ciede2000(predicted, true),
        "colorfulness": image_quality.colorfulness(predicted),
        "truth_colorfulness": image_quality.colorfulness(true),
    }


@dataclass
class Tally:
    """Running sums of the per-image metrics and the two palettes, for one colorizer; and each
    image's ΔE2000 by collection, so every collection can weigh the same however many photos it has."""

    sums: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    images: int = 0
    predicted_palette: image_quality.PaletteHistogram = field(default_factory=image_quality.PaletteHistogram)
    true_palette: image_quality.PaletteHistogram = field(default_factory=image_quality.PaletteHistogram)
    delta_e_by_collection: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    delta_e_unplaced: list[float] = field(default_factory=list)  # images of no known collection: each its own

    def add(self, prediction: Image.Image, truth: Image.Image, collection: str | None = None) -> None:
        predicted, true = np.asarray(prediction.convert("RGB")), np.asarray(truth.convert("RGB"))
        self.add_scores(image_scores(predicted, true), collection)
        self.predicted_palette.add(predicted)
        self.true_palette.add(true)

    def add_scores(self, scores: Mapping[str, float], collection: str | None = None) -> None:
        """Count one image by its ``image_scores`` alone (its palette left out)."""
        for name, value in scores.items():
            self.sums[name] += value
        if collection is None:
            self.delta_e_unplaced.append(scores["ciede2000"])
        else:
            self.delta_e_by_collection[collection].append(scores["ciede2000"])
        self.images += 1

    def __iadd__(self, other: Tally) -> Tally:
        """Take in another tally's images, as if they had been added here."""
        for name, total in other.sums.items():
            self.sums[name] += total
        self.predicted_palette.counts += other.predicted_palette.counts
        self.true_palette.counts += other.true_palette.counts
        for collection, delta_e in other.delta_e_by_collection.items():
            self.delta_e_by_collection[collection] += delta_e
        self.delta_e_unplaced += other.delta_e_unplaced
        self.images += other.images
        return self

    def summary(self) -> dict[str, float]:
        """Means over images; the colourfulness ratio is of the means (NaN if the truth is all gray)."""
        if self.images == 0:
            raise ValueError("No images were scored.")
        means = {name: total / self.images for name, total in self.sums.items()}
        truth_colorfulness = means["truth_colorfulness"]
        return {
            "images": self.images,
            **means,
            "colorfulness_ratio": (
                means["colorfulness"] / truth_colorfulness if truth_colorfulness > 0 else math.nan
            ),
            "ciede2000_by_collection": float(np.mean(self.collection_delta_e())),
            "palette_js": (
                self.predicted_palette.js_divergence(self.true_palette) if self.true_palette.total else math.nan
            ),
        }

    def collection_means(self) -> dict[str, float]:
        """Mean ΔE2000 of each known collection."""
        return {collection: float(np.mean(scores)) for collection, scores in self.delta_e_by_collection.items()}

    def collection_delta_e(self) -> list[float]:
        """Mean ΔE2000 of each collection (an image of no known collection is one of its own)."""
        return list(self.collection_means().values()) + self.delta_e_unplaced


@dataclass
class Scored:
    """A colorizer's tally, and its first few predictions for picture grids."""

    tally: Tally
    samples: list[tuple[Image.Image, Image.Image, Image.Image]]  # (gray, prediction, truth)

    @property
    def metrics(self) -> dict[str, float]:
        return self.tally.summary()


def score(
    colorize: Colorize,
    data_dir: Path,
    *,
    split: str = "test",
    per_photo: int | None = None,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    label: str = "model",
    keep: int = GRID_ROWS,
    film: str | None = None,
) -> Scored:
    """Colorize a split's photos in batches with ``colorize`` and score them against the truth; with a
    ``film``, the grays are the truth as that film records it, not the split's gray twins."""
    pairs = find_pairs(data_dir, split=split, limit=limit, per_photo=per_photo)
    tally = Tally()
    samples: list[tuple[Image.Image, Image.Image, Image.Image]] = []
    with tqdm(total=len(pairs), desc=f"evaluate {label}", unit="img") as progress:
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            loaded = [load_pair(pair, film) for pair in batch]
            predictions = colorize([gray for gray, _ in loaded])
            for pair, (gray, truth), prediction in zip(batch, loaded, predictions, strict=True):
                tally.add(prediction, truth, pair.collection)
                if len(samples) < keep:
                    samples.append((gray, prediction, truth))
            progress.update(len(loaded))
    return Scored(tally, samples)


def model_colorizer(model_dir: Path) -> tuple[str, Colorize]:
    """Load an exported model; return its name (its arch) and a batch colorize function."""
    model = load_model(Path(model_dir))
    return model.metadata.arch or "model", partial(
        colorize_images, predict=model.predict, size=model.native_size
    )


def in_memory_colorizer(predict_rgb: Callable[[tf.Tensor], tf.Tensor], size: int) -> Colorize:
    """A colorize function over a model still in training (``gray -> rgb`` tensors), as the service does it."""
    return partial(colorize_images, predict=lambda batch: predict_rgb(tf.constant(batch)).numpy(), size=size)


def evaluate(
    model_dir: Path,
    data_dir: Path,
    *,
    split: str = "test",
    per_photo: int | None = None,
    grid_path: Path | None = None,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> dict[str, float]:
    """Score the exported model at ``model_dir`` (a version folder or a root of versions) on ``split``."""
    label, colorize = model_colorizer(model_dir)
    scored = score(colorize, data_dir, split=split, per_photo=per_photo, limit=limit, batch_size=batch_size, label=label)
    if grid_path is not None:
        save_comparison_grid({label: scored}, grid_path)
    return scored.metrics


def save_comparison_grid(results: Mapping[str, Scored], path: Path) -> Path:
    """One row per test photo: gray | each colorizer's result | truth."""
    columns = list(results.values())
    first = columns[0]
    rows = [
        [first.samples[row][0], *(column.samples[row][1] for column in columns), first.samples[row][2]]
        for row in range(min(len(column.samples) for column in columns))
    ]
    return save_grid(rows, path, labels=("gray", *results, "truth"))


def gray_as_rgb(grays: Sequence[Image.Image]) -> list[Image.Image]:
    """The "do nothing" colorizer: each gray photo as an RGB image."""
    return [gray.convert("RGB") for gray in grays]


def format_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    """A Markdown table with one row per named result (e.g. seed, ours, gray)."""
    header = "| | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(COLUMNS)
    lines = [header, rule]
    for name, result in rows.items():
        cells = [_cell(result.get(key), number_format) for key, _, number_format in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_collection_table(tallies: Mapping[str, Tally]) -> str:
    """A Markdown table of ΔE2000 per collection: a column per colorizer and, where ``gray`` is
    one of them, the first one's difference from it (rows from its best lead to its worst). Images
    of no known collection are left out."""
    means = {name: tally.collection_means() for name, tally in tallies.items()}
    first = next(iter(tallies))
    against_gray = "gray" in tallies and first != "gray"
    collections = sorted(tallies[first].delta_e_by_collection)
    if against_gray:
        collections.sort(key=lambda collection: means[first][collection] - means["gray"][collection])
    titles = ["collection", "images", *tallies, *([f"{first} − gray"] if against_gray else [])]
    lines = ["| " + " | ".join(titles) + " |", "|---|" + "---:|" * (len(titles) - 1)]
    for collection in collections:
        cells = [collection, str(len(tallies[first].delta_e_by_collection[collection]))]
        cells += [f"{means[name][collection]:.2f}" for name in tallies]
        if against_gray:
            cells.append(f"{means[first][collection] - means['gray'][collection]:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float | None, number_format: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return number_format.format(value)
