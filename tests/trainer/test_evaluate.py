from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from colorizer_trainer import image_quality
from colorizer_trainer.cli import app
from colorizer_trainer.evaluate import (
    FILM_WEIGHTS,
    GRID_ROWS,
    Tally,
    evaluate,
    film_gray,
    find_pairs,
    format_collection_table,
    format_table,
    gray_as_rgb,
    score,
)
from colorizer_trainer.evaluate_cli import Film
from colorizer_trainer.samples import GAP, LABEL_HEIGHT

SIDE = 32
SEPIA = (1.0, 0.8, 0.6)


def score_gray_input(data: Path) -> dict[str, float]:
    """The floor any colorizer should clear: the gray input itself as the prediction."""
    return score(gray_as_rgb, data, label="gray").metrics


def truth_image(index: int, colourful: bool) -> Image.Image:
    """A smooth test photo; the colourful ones have red and green ramps and a per-photo blue."""
    ramp = np.linspace(0, 255, SIDE)
    red, green = np.meshgrid(ramp, ramp)
    blue = np.full((SIDE, SIDE), 40.0 * index)
    channels = [red, green, blue] if colourful else [red, red, red]
    return Image.fromarray(np.stack(channels, axis=-1).round().astype(np.uint8), "RGB")


def write_dataset(root: Path, count: int, colourful: bool) -> Path:
    """``root/test_y`` photos and their grayscale twins in ``root/test_x``, as the dataset builder makes them."""
    for folder in ("test_x", "test_y"):
        (root / folder).mkdir(parents=True)
    for index in range(count):
        truth = truth_image(index, colourful)
        truth.save(root / "test_y" / f"photo{index}.png")
        truth.convert("L").save(root / "test_x" / f"photo{index}.png")
    return root


@pytest.fixture
def colour_data(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "colour", count=5, colourful=True)


@pytest.fixture
def gray_data(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "gray", count=3, colourful=False)


def test_a_perfect_prediction_of_gray_truth_scores_perfectly(
    tiny_model_dir: Callable[..., Path], gray_data: Path
) -> None:
    result = evaluate(tiny_model_dir(), gray_data)
    assert result["images"] == 3
    assert result["psnr"] == image_quality.PSNR_CAP_DB
    assert result["ssim"] == pytest.approx(1.0)
    assert result["ciede2000"] == pytest.approx(0.0, abs=1e-9)
    assert result["palette_js"] == pytest.approx(0.0, abs=1e-12)
    assert result["colorfulness"] == pytest.approx(0.0)
    assert math.isnan(result["colorfulness_ratio"])  # the truth has no colour to compare with


def test_gray_baseline_has_no_colour_and_a_different_palette(colour_data: Path) -> None:
    result = score_gray_input(colour_data)
    assert result["colorfulness"] == pytest.approx(0.0)
    assert result["colorfulness_ratio"] == pytest.approx(0.0)
    assert result["truth_colorfulness"] > 10
    assert 0.3 < result["palette_js"] <= 1.0
    assert result["ciede2000"] > 1.0
    assert 0 < result["psnr"] < image_quality.PSNR_CAP_DB


def test_a_model_that_adds_no_colour_scores_exactly_like_the_gray_baseline(
    tiny_model_dir: Callable[..., Path], colour_data: Path
) -> None:
    assert evaluate(tiny_model_dir(), colour_data, batch_size=2) == pytest.approx(
        score_gray_input(colour_data)
    )


def test_a_tinting_model_adds_colour_that_the_gray_baseline_lacks(
    tiny_model_dir: Callable[..., Path], colour_data: Path
) -> None:
    tinted = evaluate(tiny_model_dir(tint=SEPIA), colour_data)
    gray = score_gray_input(colour_data)
    assert tinted["colorfulness"] > 1.0
    assert tinted["truth_colorfulness"] == pytest.approx(gray["truth_colorfulness"])
    assert tinted["palette_js"] != pytest.approx(gray["palette_js"])


def test_each_collection_weighs_the_same_in_the_per_collection_delta_e(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "two collections", count=4, colourful=True)
    collections = ["large", "large", "large", "small"]
    files = [
        {"name": f"photo{index}.png", "group": f"photo{index}", "collection": name}
        for index, name in enumerate(collections)
    ]
    (data / "manifest.json").write_text(json.dumps({"files": files}))
    assert [pair.collection for pair in find_pairs(data)] == collections

    tally = score(gray_as_rgb, data, label="gray").tally
    by_collection = [np.mean(tally.delta_e_by_collection[name]) for name in ("large", "small")]
    assert tally.summary()["ciede2000_by_collection"] == pytest.approx(np.mean(by_collection))
    assert tally.summary()["ciede2000_by_collection"] != pytest.approx(tally.summary()["ciede2000"])


def test_the_collection_table_lists_each_collections_delta_e_from_the_best_lead_over_gray() -> None:
    def tally(by_collection: dict[str, list[float]]) -> Tally:
        made = Tally()
        made.delta_e_by_collection.update(by_collection)
        return made

    ours = tally({"sky": [9.0, 11.0], "water": [14.0]})
    gray = tally({"sky": [12.0, 12.0], "water": [13.0]})
    lines = format_collection_table({"ours": ours, "gray": gray}).splitlines()
    assert lines[0] == "| collection | images | ours | gray | ours − gray |"
    assert lines[2:] == ["| sky | 2 | 10.00 | 12.00 | -2.00 |", "| water | 1 | 14.00 | 13.00 | +1.00 |"]


def test_the_cli_prints_the_collection_table_on_request(tiny_model_dir: Callable[..., Path], tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", count=2, colourful=True)
    files = [{"name": f"photo{index}.png", "group": f"photo{index}", "collection": "beach"} for index in range(2)]
    (data / "manifest.json").write_text(json.dumps({"files": files}))
    outcome = CliRunner().invoke(app, ["evaluate", str(tiny_model_dir(tint=SEPIA)), str(data), "--by-collection"])
    assert outcome.exit_code == 0, outcome.output
    assert "| collection | images | tint | gray | tint − gray |" in outcome.output
    assert "| beach | 2 |" in outcome.output


def test_without_collections_each_image_is_its_own(colour_data: Path) -> None:
    result = score_gray_input(colour_data)
    assert result["ciede2000_by_collection"] == pytest.approx(result["ciede2000"])


def test_limit_scores_only_the_first_photos(tiny_model_dir: Callable[..., Path], colour_data: Path) -> None:
    assert evaluate(tiny_model_dir(), colour_data, limit=2)["images"] == 2
    assert [pair.gray_path.name for pair in find_pairs(colour_data, limit=2)] == ["photo0.png", "photo1.png"]


def test_grid_shows_gray_model_and_truth_side_by_side(
    tiny_model_dir: Callable[..., Path], tmp_path: Path
) -> None:
    data = write_dataset(tmp_path / "many", count=GRID_ROWS + 2, colourful=True)
    grid_path = tmp_path / "grid.png"
    evaluate(tiny_model_dir(tint=SEPIA), data, grid_path=grid_path)
    with Image.open(grid_path) as grid:
        columns = 3  # gray | model | truth
        assert grid.size == (
            columns * SIDE + (columns - 1) * GAP,
            LABEL_HEIGHT + GRID_ROWS * SIDE + (GRID_ROWS - 1) * GAP,
        )
        first_truth = grid.crop((2 * (SIDE + GAP), LABEL_HEIGHT, 2 * (SIDE + GAP) + SIDE, LABEL_HEIGHT + SIDE))
        assert np.array_equal(np.asarray(first_truth), np.asarray(truth_image(0, colourful=True)))


def test_missing_truth_twin_is_reported(colour_data: Path) -> None:
    (colour_data / "test_y" / "photo3.png").unlink()
    with pytest.raises(FileNotFoundError, match="photo3.png"):
        score_gray_input(colour_data)


def test_empty_test_split_is_reported(tmp_path: Path) -> None:
    (tmp_path / "test_x").mkdir()
    with pytest.raises(FileNotFoundError, match="no \\*.png"):
        score_gray_input(tmp_path)


def test_format_table_has_a_row_per_result_and_marks_missing_values() -> None:
    rows = {
        "ours": {"psnr": 24.5, "ssim": 0.91, "palette_js": 0.12, "colorfulness_ratio": math.nan},
        "gray": {"psnr": 22.0},
    }
    lines = format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[0].startswith("| |") and "PSNR" in lines[0]
    assert lines[2].startswith("| ours | n/a | 24.50 | 0.910 |")
    assert lines[3].startswith("| gray | n/a | 22.00 | n/a |")
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_cli_prints_the_table_and_writes_json(
    tiny_model_dir: Callable[..., Path], colour_data: Path, tmp_path: Path
) -> None:
    json_path = tmp_path / "out" / "results.json"
    args = [str(tiny_model_dir(tint=SEPIA)), str(colour_data), "--limit", "2", "--json", str(json_path)]
    outcome = CliRunner().invoke(app, ["evaluate", *args])
    assert outcome.exit_code == 0, outcome.output
    assert "| tint |" in outcome.output and "| gray |" in outcome.output
    results = json.loads(json_path.read_text())
    assert set(results) == {"tint", "gray"}
    assert results["tint"]["images"] == 2


@pytest.mark.parametrize(("film", "red_as_gray"), [("luma", 76), ("orthochromatic", 13), ("red-filter", 153)])
def test_a_film_records_red_as_its_weights_say(film: str, red_as_gray: int) -> None:
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    assert film_gray(red, FILM_WEIGHTS[film]).getpixel((0, 0)) == red_as_gray  # luma: PIL's convert("L") too


def test_the_cli_offers_every_film_there_are_weights_for() -> None:
    assert set(get_args(Film)) == set(FILM_WEIGHTS)


def test_the_cli_scores_grays_remade_as_a_film_records_them(
    tiny_model_dir: Callable[..., Path], colour_data: Path, tmp_path: Path
) -> None:
    def gray_row(*film: str) -> dict[str, float]:
        json_path = tmp_path / f"{film}.json"
        args = ["evaluate", str(tiny_model_dir()), str(colour_data), "--json", str(json_path), *film]
        outcome = CliRunner().invoke(app, args)
        assert outcome.exit_code == 0, outcome.output
        return json.loads(json_path.read_text())["gray"]

    twins, luma, orthochromatic = gray_row(), gray_row("--film", "luma"), gray_row("--film", "orthochromatic")
    assert luma["ciede2000"] == pytest.approx(twins["ciede2000"], abs=0.05)  # the twins are PIL's luma
    assert orthochromatic["ciede2000"] > twins["ciede2000"] + 1  # red ramps turn dark: further from the truth


def test_cli_can_leave_out_the_gray_baseline(tiny_model_dir: Callable[..., Path], colour_data: Path) -> None:
    outcome = CliRunner().invoke(app, ["evaluate", str(tiny_model_dir()), str(colour_data), "--no-baseline-gray"])
    assert outcome.exit_code == 0, outcome.output
    assert "| identity |" in outcome.output and "| gray |" not in outcome.output


def test_the_cli_compares_several_models_in_one_table_and_grid(
    tiny_model_dir: Callable[..., Path], colour_data: Path, tmp_path: Path
) -> None:
    sepia = tiny_model_dir(tint=SEPIA)
    identity = tiny_model_dir(version=2)
    grid_path = tmp_path / "compare.png"
    result = CliRunner().invoke(
        app, ["evaluate", str(sepia), str(colour_data), "--also", str(identity), "--grid", str(grid_path), "--grid-rows", "2"]
    )
    assert result.exit_code == 0, result.output
    assert {"| tint |", "| identity |", "| gray |"} <= {line[: line.index("|", 1) + 1] for line in result.output.splitlines() if line.startswith("| ")}
    with Image.open(grid_path) as grid:
        assert grid.size == (4 * SIDE + 3 * GAP, LABEL_HEIGHT + 2 * SIDE + GAP)  # gray | tint | identity | truth


def test_an_unreadable_test_photo_is_named_not_a_traceback(tiny_model_dir: Callable[..., Path], colour_data: Path) -> None:
    broken = colour_data / "test_y" / "photo2.png"
    broken.write_bytes(broken.read_bytes()[:100])  # truncated

    outcome = CliRunner().invoke(app, ["evaluate", str(tiny_model_dir()), str(colour_data)])

    assert outcome.exit_code == 1
    assert f"error: {broken} cannot be read" in outcome.output
