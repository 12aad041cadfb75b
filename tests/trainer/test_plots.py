"""The learning-curves command draws each run's validation ΔE2000 from its validation.csv."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from colorizer_trainer.cli import app
from colorizer_trainer.train import VALIDATION_FILE


def _run_with_validation(root: Path, name: str, delta_e: list[float]) -> Path:
    run = root / name
    run.mkdir()
    rows = [f"{3.0 * (index + 1)},{value}" for index, value in enumerate(delta_e)]
    (run / VALIDATION_FILE).write_text("\n".join(["cpu_minutes,ciede2000", *rows]) + "\n")
    return run


def test_the_curves_of_several_runs_go_into_one_png(tmp_path: Path) -> None:
    runs = [_run_with_validation(tmp_path, "classes", [19.0, 15.2]), _run_with_validation(tmp_path, "l1", [15.4, 14.1])]
    out = tmp_path / "docs" / "curves.png"
    outcome = CliRunner().invoke(app, ["learning-curves", *map(str, runs), "--out", str(out), "--gray-delta-e", "13.8"])
    assert outcome.exit_code == 0, outcome.output
    with Image.open(out) as image:
        assert image.format == "PNG"


def test_a_folder_without_validation_is_named(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["learning-curves", str(tmp_path), "--out", str(tmp_path / "curves.png")])
    assert outcome.exit_code == 1
    assert VALIDATION_FILE in outcome.output and str(tmp_path) in outcome.output
