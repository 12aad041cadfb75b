"""The hints curve: hints taken from the truth bring a model that follows them closer to it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from photo_folders import write_tiny_dataset
from PIL import Image
from typer.testing import CliRunner

from colorizer_trainer.cli import app
from colorizer_trainer.hints_curve import GRID_HINTS, GRID_LABELS, hints_curve

SIZE = 32


@pytest.fixture
def colour_data(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "data", train=0, val=0, test=3, size=SIZE)


def test_hints_from_the_truth_lower_the_error_of_a_model_that_follows_them(
    tiny_model_dir: Callable[..., Path], colour_data: Path
) -> None:
    curve = hints_curve(tiny_model_dir(size=SIZE, hints=True), colour_data, counts=(0, 5, 20))
    delta_e = [curve.metrics[count]["ciede2000"] for count in (0, 5, 20)]
    assert list(curve.metrics) == [0, 5, 20]
    assert delta_e[0] > delta_e[1] > delta_e[2]
    assert all(metrics["images"] == 3 for metrics in curve.metrics.values())


def test_the_grid_rows_show_the_photo_without_and_with_its_hints_marked(
    tiny_model_dir: Callable[..., Path], colour_data: Path
) -> None:
    curve = hints_curve(tiny_model_dir(size=SIZE, hints=True), colour_data, counts=(0,), keep=2)
    assert len(curve.samples) == 2 and all(len(row) == len(GRID_LABELS) for row in curve.samples)
    gray, unhinted, hinted, truth = (np.asarray(image.convert("RGB"), np.int16) for image in curve.samples[0])
    white = np.all(hinted == 255, axis=-1) & ~np.all(unhinted == 255, axis=-1)
    assert white.any(), f"no white ring of the {GRID_HINTS} hints' marks"


def test_the_command_refuses_a_model_that_takes_no_hints(tiny_model_dir: Callable[..., Path], colour_data: Path) -> None:
    outcome = CliRunner().invoke(app, ["hints-curve", str(tiny_model_dir(size=SIZE)), str(colour_data)])
    assert outcome.exit_code == 1
    assert "takes no colour hints" in outcome.output


def test_the_command_prints_the_table_and_saves_the_plot_and_grid(
    tiny_model_dir: Callable[..., Path], colour_data: Path, tmp_path: Path
) -> None:
    plot, grid = tmp_path / "curve.png", tmp_path / "grid.png"
    args = ["hints-curve", str(tiny_model_dir(size=SIZE, hints=True)), str(colour_data), "--plot", str(plot)]
    outcome = CliRunner().invoke(app, [*args, "--grid", str(grid), "--grid-rows", "2"])
    assert outcome.exit_code == 0, outcome.output
    assert "| 10 hints |" in outcome.output
    with Image.open(grid) as image:
        assert image.width > len(GRID_LABELS) * SIZE
    with Image.open(plot) as image:
        assert image.format == "PNG"
