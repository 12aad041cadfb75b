"""The pictures of docs/results.md: learning curves and the hints curve, as PNG (matplotlib)."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def read_validation(csv_path: Path) -> list[dict[str, float]]:
    """The rows of a run's ``validation.csv``, as numbers."""
    with Path(csv_path).open() as file:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(file)]


def learning_curves(runs: Mapping[str, Path], path: Path, *, gray_delta_e: float | None = None) -> Path:
    """Validation ΔE2000 against CPU-minutes of training, one line per run (its validation.csv)."""
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, csv_path in runs.items():
        rows = read_validation(csv_path)
        axes.plot([row["cpu_minutes"] for row in rows], [row["ciede2000"] for row in rows], marker="o", label=label)
    if gray_delta_e is not None:
        axes.axhline(gray_delta_e, color="gray", linestyle="--", label="gray input")
    axes.set(xlabel="training CPU-minutes", ylabel="validation ΔE2000 (lower is better)", title="Learning curves")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def hints_curve(delta_e_by_count: Mapping[int, float], path: Path) -> Path:
    """ΔE2000 against the number of hints given."""
    figure, axes = plt.subplots(figsize=(6, 3.8), dpi=120)
    counts = sorted(delta_e_by_count)
    axes.plot(counts, [delta_e_by_count[count] for count in counts], marker="o")
    axes.set(xlabel="hints taken from the truth", ylabel="test ΔE2000 (lower is better)", title="Colour hints")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
