"""How much a few colour hints help: ΔE2000 against the number of hints taken from the truth.

For each photo and each hint count, the points are drawn at random (seeded by the photo's index)
and each is given the true mean colour of its ``HINT_PATCH`` square, as a person who knows the
photo's colours would click them. The model and the colour merge are the service's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from colorizer_core import contract
from colorizer_core.hints import Hint
from colorizer_core.imaging import colorize_images
from colorizer_core.inference import load_model
from colorizer_trainer.evaluate import Tally, find_pairs, load_pair

HINT_COUNTS = (0, 1, 2, 5, 10, 20)


def hints_from_truth(truth: Image.Image, count: int, size: int, rng: np.random.Generator) -> list[Hint]:
    """``count`` random points of the photo, each with the true mean colour of the ``HINT_PATCH``
    square it covers in the model's ``size`` x ``size`` input, where the service paints it."""
    colour = np.asarray(truth.convert("RGB").resize((size, size), Image.Resampling.BICUBIC), np.float32)
    half = contract.HINT_PATCH // 2
    width, height = truth.size
    hints = []
    for x, y in rng.random((count, 2)) * (width, height):
        row, column = int(y * size / height), int(x * size / width)
        mean = colour[max(row - half, 0) : row + half + 1, max(column - half, 0) : column + half + 1].mean(axis=(0, 1))
        hints.append(Hint(x=x, y=y, color="#" + "".join(f"{round(channel):02x}" for channel in mean)))
    return hints


GRID_HINTS = 10  # the hint count shown beside no hints in the before/after grid
GRID_LABELS = ("gray", "no hints", f"{GRID_HINTS} hints", "truth")
HINT_MARK_RADIUS = 3


@dataclass
class HintsCurve:
    metrics: dict[int, dict[str, float]]  # by hint count
    samples: list[list[Image.Image]]  # rows of GRID_LABELS, the hints marked on their column


def hints_curve(
    model_dir: Path,
    data_dir: Path,
    *,
    split: str = "test",
    per_photo: int | None = None,
    counts: Sequence[int] = HINT_COUNTS,
    seed: int = 0,
    keep: int = 0,
) -> HintsCurve:
    """Metrics of the model at ``model_dir`` on ``split`` for each number of hints, and the first
    ``keep`` photos without and with ``GRID_HINTS`` hints."""
    model = load_model(Path(model_dir))
    if not model.takes_hints:
        raise ValueError(f"{model_dir} takes no colour hints.")
    pairs = find_pairs(data_dir, split=split, per_photo=per_photo)
    grid_counts = {0, GRID_HINTS} if keep else set()
    tallies = {count: Tally() for count in sorted({*counts, *grid_counts})}
    samples = []
    for index, pair in enumerate(tqdm(pairs, desc="hints curve", unit="img")):
        gray, truth = load_pair(pair)
        predictions, hints = {}, {}
        for count, tally in tallies.items():
            rng = np.random.default_rng([seed, index, count])
            hints[count] = hints_from_truth(truth, count, model.native_size, rng)
            (predictions[count],) = colorize_images([gray], model.predict, model.native_size, hints=hints[count])
            tally.add(predictions[count], truth, pair.collection)
        if index < keep:
            samples.append([gray, predictions[0], marked(predictions[GRID_HINTS], hints[GRID_HINTS]), truth])
    metrics = {count: tally.summary() for count, tally in tallies.items() if count in counts}
    return HintsCurve(metrics, samples)


def marked(image: Image.Image, hints: Sequence[Hint]) -> Image.Image:
    """A copy of ``image`` with each hint drawn as a dot of its colour, ringed in white."""
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    for hint in hints:
        box = (hint.x - HINT_MARK_RADIUS, hint.y - HINT_MARK_RADIUS, hint.x + HINT_MARK_RADIUS, hint.y + HINT_MARK_RADIUS)
        draw.ellipse(box, fill=hint.color, outline="white")
    return image
