"""``colorize-train evaluate``: score an exported model on a dataset's test split and print a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from colorizer_core.tensorflow_setup import quiet_tensorflow

# Options that `evaluate` and `hints-curve` share; each command states the defaults below.
SCORED_SPLIT = "test"
GRID_ROWS = 6
SplitOption = Annotated[str, typer.Option(help="Which split to score: val while choosing, test once at the end.")]
PerPhotoOption = Annotated[int | None, typer.Option(min=1, help="Score at most N files of each source photo.")]
GridRowsOption = Annotated[int, typer.Option(min=1, help="Photos in the grid.")]
Film = Literal["luma", "average", "orthochromatic", "red-filter"]  # evaluate.FILM_WEIGHTS says how each sees

def evaluate_command(
    model_dir: Annotated[Path, typer.Argument(help="A model version folder, or a root of versions.")],
    data: Annotated[Path, typer.Argument(help="A dataset folder holding test_x/ and test_y/ (or another split's).")],
    split: SplitOption = SCORED_SPLIT,
    per_photo: PerPhotoOption = None,
    grid: Annotated[Path | None, typer.Option(help="Write a gray | model | truth PNG grid here.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N test photos.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON.")] = None,
    baseline_gray: Annotated[bool, typer.Option(help="Add a row for the gray input itself.")] = True,
    also: Annotated[
        list[Path] | None, typer.Option(help="Another model to score beside MODEL_DIR (repeatable); it joins the table and the grid.")
    ] = None,
    grid_rows: GridRowsOption = GRID_ROWS,
    by_collection: Annotated[bool, typer.Option(help="Also print ΔE2000 per collection (the manifest's).")] = False,
    film: Annotated[
        Film | None,
        typer.Option(help="Remake each gray from its truth as this film records it (default: the split's gray twins)."),
    ] = None,
) -> None:
    """Score MODEL_DIR on a split of DATA and print a Markdown table of the metrics."""
    quiet_tensorflow()
    from colorizer_trainer.data import UnreadableImage
    from colorizer_trainer.evaluate import (  # loads TensorFlow
        format_collection_table,
        format_table,
        gray_as_rgb,
        model_colorizer,
        save_comparison_grid,
        score,
    )

    results = {}
    scoring = dict(split=split, per_photo=per_photo, limit=limit, keep=grid_rows, film=film)
    try:
        for path in [model_dir, *(also or [])]:
            label, colorize = model_colorizer(path)
            if label in results:
                label = f"{label} ({path})"
            results[label] = score(colorize, data, label=label, **scoring)
        if baseline_gray:
            results["gray"] = score(gray_as_rgb, data, label="gray", **scoring)
    except UnreadableImage as error:
        typer.secho(f"error: {error}", err=True, fg="red")
        raise typer.Exit(code=1) from None
    rows = {label: scored.metrics for label, scored in results.items()}
    typer.echo(format_table(rows))
    if by_collection:
        typer.echo("\n" + format_collection_table({label: scored.tally for label, scored in results.items()}))
    if grid is not None:
        save_comparison_grid({label: scored for label, scored in results.items() if label != "gray"}, grid)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(rows, indent=2) + "\n")
