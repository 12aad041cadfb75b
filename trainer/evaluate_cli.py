"""``colorize-train evaluate``: score an exported model on a dataset's test split and print a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from service import contract

app = typer.Typer(add_completion=False)


@app.command("evaluate")
def evaluate_command(
    model_dir: Annotated[Path, typer.Argument(help="A model version folder, or a root of versions.")],
    data: Annotated[Path, typer.Argument(help="A dataset folder holding test_x/ and test_y/.")],
    grid: Annotated[Path | None, typer.Option(help="Write a gray | model | truth PNG grid here.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N test photos.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON.")] = None,
    baseline_gray: Annotated[bool, typer.Option(help="Add a row for the gray input itself.")] = True,
) -> None:
    """Score MODEL_DIR on DATA's test split and print a Markdown table of the metrics."""
    from trainer.evaluate import evaluate, evaluate_gray_baseline, format_table  # loads TensorFlow

    arch = contract.read_metadata(contract.resolve_model_dir(model_dir)).get("arch", "model")
    rows = {arch: evaluate(model_dir, data, grid_path=grid, limit=limit)}
    if baseline_gray:
        rows["gray"] = evaluate_gray_baseline(data, limit=limit)
    typer.echo(format_table(rows))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(rows, indent=2) + "\n")
