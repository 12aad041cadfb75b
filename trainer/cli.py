"""``colorize-train``: wires the trainer's commands together; the work lives in the other modules."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import MISSING
from pathlib import Path
from typing import Annotated, Any, Optional, get_type_hints

import typer

from colorizer_core.tensorflow_setup import device_summary, quiet_tensorflow
from colorizer_trainer.config import (
    CHROMA_GAINS,
    CHROMA_THRESHOLDS,
    PHOTO_GAIN_LEANS,
    PHOTO_GAINS,
    RIDGE_STRENGTH,
    TrainConfig,
    command_line_settings,
    help_text,
)
from colorizer_trainer.dataset import cli as dataset_cli
from colorizer_trainer.evaluate_cli import (  # imports TensorFlow only when a command runs
    GRID_ROWS,
    SCORED_SPLIT,
    GridRowsOption,
    PerPhotoOption,
    SplitOption,
    evaluate_command,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Build datasets, train, export and evaluate colorizers.")


app.add_typer(dataset_cli.app, name="dataset", help="Build the seed's dataset from folders of photos, or scrape one.")
app.command("evaluate")(evaluate_command)


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg="red")
    return typer.Exit(code=1)


def _train_config_parameters() -> list[inspect.Parameter]:
    """``TrainConfig``'s command-line fields as typer parameters, each with the field's type,
    default and help: a field without a default is an argument, the others are options."""
    types = get_type_hints(TrainConfig)
    parameters = []
    for setting in command_line_settings():
        required = setting.default is MISSING
        kind = typer.Argument if required else typer.Option
        parameters.append(
            inspect.Parameter(
                setting.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if required else setting.default,
                annotation=Annotated[types[setting.name], kind(help=help_text(setting))],
            )
        )
    return parameters


def _takes_train_config(command: Callable[..., None]) -> Callable[..., None]:
    """Let typer see ``TrainConfig``'s settings, then ``command``'s own options, as the parameters
    of ``command``, which receives the settings as ``**settings``."""
    own = [
        parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for parameter in inspect.signature(command, eval_str=True).parameters.values()
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    command.__signature__ = inspect.Signature([*_train_config_parameters(), *own])  # type: ignore[attr-defined]
    return command


@app.command()
@_takes_train_config
def train(
    export: Annotated[bool, typer.Option(help="Export a model version when training ends (the chief does, under multi-worker).")] = True,
    **settings: Any,
) -> None:
    """Train a GAN on DATA; rerunning the same command resumes from the last checkpoint."""
    quiet_tensorflow()
    from colorizer_trainer import runs
    from colorizer_trainer.distribution import WorkerLost
    from colorizer_trainer.train import ConfigMismatch, TrainingDiverged

    try:
        config = TrainConfig(**settings)
        typer.echo(f"Training runs on {device_summary()}", err=True)
        runs.train_and_export(config, export=export)
    except (ConfigMismatch, TrainingDiverged, WorkerLost, FileNotFoundError, ValueError) as error:
        raise _fail(error) from None


@app.command("export")
def export_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="A training run folder (holds config.json and checkpoints/), or an exported version to export again."
        ),
    ],
    models_dir: Annotated[
        Optional[Path], typer.Option(help="Where to write the version; default: the run's, or beside the version.")
    ] = None,
    evaluate: Annotated[bool, typer.Option(help="From a run: record validation metrics in colorizer.json.")] = True,
    temperature: Annotated[Optional[float], typer.Option(help="Classes head: annealed-mean temperature to export (choose it on validation).")] = None,
    chroma_gain: Annotated[Optional[float], typer.Option(help="Ours: scale the exported chroma by this (choose it on validation).")] = None,
    chroma_threshold: Annotated[
        Optional[float],
        typer.Option(help="Ours: lower each pixel's chroma by this many Lab units before the gain (choose it on validation)."),
    ] = None,
    size: Annotated[Optional[int], typer.Option(help="Ours: the side photos are seen at, the model's native size (choose it on validation).")] = None,
    photo_gain: Annotated[
        Optional[Path], typer.Option(help="Ours: pick each photo's chroma gain as this file of `fit-photo-gain` says (and its threshold).")
    ] = None,
    hint_spread: Annotated[
        Optional[float],
        typer.Option(help="Ours: spread each colour hint over the pixels near it and about as light, this many pixels at the native size far (0: not)."),
    ] = None,
    hinted_max_gain: Annotated[
        Optional[float],
        typer.Option(help="Ours: a photo given hints keeps at most this chroma gain of the model's colour (0: its colour comes from the hints alone)."),
    ] = None,
) -> None:
    """Export the newest checkpoint of a run, or an exported version's weights, as the next model version."""
    quiet_tensorflow()
    from colorizer_core.contract import METADATA_FILE
    from colorizer_trainer import runs
    from colorizer_trainer.photo_gain import PhotoGainFit

    choices = {
        "size": size, "temperature": temperature, "chroma_gain": chroma_gain, "chroma_threshold": chroma_threshold,
        "hint_spread": hint_spread, "hinted_max_gain": hinted_max_gain,
    }  # fmt: skip
    try:
        choices["photo_gain"] = None if photo_gain is None else PhotoGainFit.read(photo_gain)
        if (source / METADATA_FILE).is_file():
            runs.export_version_again(source, models_dir=models_dir, **choices)
        else:
            runs.export_run(source, models_dir=models_dir, evaluate=evaluate, **choices)
    except (FileNotFoundError, ValueError) as error:
        raise _fail(error) from None


@app.command("choose-decoding")
def choose_decoding_command(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(help="Training runs of our architecture: one, or one per fold of `dataset folds`."),
    ],
    sizes: Annotated[
        Optional[list[int]], typer.Option(help="Sides to see the photos at (repeatable); default: the native size.")
    ] = None,
    gains: Annotated[list[float], typer.Option(help="Chroma gains to score (repeatable).")] = list(CHROMA_GAINS),
    thresholds: Annotated[
        list[float], typer.Option(help="Chroma thresholds to score, in Lab units (repeatable).")
    ] = list(CHROMA_THRESHOLDS),
) -> None:
    """Score the runs on validation at several sizes, chroma thresholds and gains (and temperatures); print them and the choice."""
    quiet_tensorflow()
    from colorizer_trainer import runs

    try:
        best, results = runs.choose_decoding(
            run_dirs, sizes=sizes, gains=gains, thresholds=thresholds
        )
    except (FileNotFoundError, ValueError) as error:
        raise _fail(error) from None
    from colorizer_trainer.evaluate import format_table

    typer.echo(format_table(results))
    typer.echo("chosen: " + " ".join(f"--{name.replace('_', '-')} {value}" for name, value in best.items()))


@app.command("fit-photo-gain")
def fit_photo_gain_command(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Training runs of our architecture with the COCO backbone, one per fold of `dataset folds`.")
    ],
    out: Annotated[Path, typer.Option(help="The JSON file to write, for `export --photo-gain`.")],
    chroma_threshold: Annotated[float, typer.Option(help="The chroma threshold (Lab units) the gains apply after.")] = 0.0,
    gains: Annotated[list[float], typer.Option(help="Gains a photo may get (repeatable).")] = list(PHOTO_GAINS),
    leans: Annotated[
        list[float], typer.Option(help="Leans towards colour to score (repeatable): ΔE2000 a photo may give up per unit of gain.")
    ] = list(PHOTO_GAIN_LEANS),
    scene: Annotated[bool, typer.Option(help="Read the COCO backbone's view of the photo.")] = True,
    doubt: Annotated[bool, typer.Option(help="Read how much the members disagree about the photo's colour.")] = False,
    ridge_strength: Annotated[
        float, typer.Option(help="The regression's penalty on standardized features (fewer features want less).")
    ] = RIDGE_STRENGTH,
) -> None:
    """Fit a chroma gain per photo, from the COCO backbone's view of it or the members' doubt, on the runs' validation photos; print each lean's metrics and the choice."""
    quiet_tensorflow()
    from colorizer_trainer import runs
    from colorizer_trainer.evaluate import format_table

    try:
        fit, results = runs.fit_photo_gain(
            run_dirs,
            chroma_threshold=chroma_threshold,
            gains=gains,
            leans=leans,
            strength=ridge_strength,
            scene=scene,
            doubt=doubt,
        )
    except (FileNotFoundError, ValueError) as error:
        raise _fail(error) from None
    typer.echo(format_table(results))
    typer.echo(f"chosen: lean {fit.lean}; written to {fit.write(out)}")


@app.command("hints-curve")
def hints_curve_command(
    model_dir: Annotated[Path, typer.Argument(help="A model version that takes hints.")],
    data: Annotated[Path, typer.Argument(help="A dataset folder.")],
    split: SplitOption = SCORED_SPLIT,
    per_photo: PerPhotoOption = None,
    plot: Annotated[Optional[Path], typer.Option(help="Also draw ΔE2000 against hints to this PNG.")] = None,
    grid: Annotated[Optional[Path], typer.Option(help="Also save gray | no hints | 10 hints | truth rows to this PNG.")] = None,
    grid_rows: GridRowsOption = GRID_ROWS,
) -> None:
    """ΔE2000 and the other metrics against the number of hints taken from the truth."""
    quiet_tensorflow()
    from colorizer_trainer.evaluate import format_table
    from colorizer_trainer.hints_curve import GRID_LABELS, hints_curve
    from colorizer_trainer.samples import save_grid

    try:
        curve = hints_curve(model_dir, data, split=split, per_photo=per_photo, keep=grid_rows if grid else 0)
    except (FileNotFoundError, ValueError) as error:
        raise _fail(error) from None
    typer.echo(format_table({f"{count} hints": metrics for count, metrics in curve.metrics.items()}))
    if plot is not None:
        from colorizer_trainer import plots

        plots.hints_curve({count: metrics["ciede2000"] for count, metrics in curve.metrics.items()}, plot)
    if grid is not None:
        save_grid(curve.samples, grid, labels=GRID_LABELS)


@app.command("learning-curves")
def learning_curves_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Training runs; each line is labelled with its folder's name.")],
    out: Annotated[Path, typer.Option(help="The PNG to write.")],
    gray_delta_e: Annotated[Optional[float], typer.Option(help="Draw the gray input's validation ΔE2000 as a line.")] = None,
) -> None:
    """Draw validation ΔE2000 against training CPU-minutes for RUN_DIRS (their validation.csv)."""
    quiet_tensorflow()
    from colorizer_trainer import plots
    from colorizer_trainer.train import VALIDATION_FILE

    missing = [str(run) for run in run_dirs if not (run / VALIDATION_FILE).is_file()]
    if missing:
        raise _fail(FileNotFoundError(f"no {VALIDATION_FILE} in: {', '.join(missing)}"))
    runs = {run.name: run / VALIDATION_FILE for run in run_dirs}
    typer.echo(plots.learning_curves(runs, out, gray_delta_e=gray_delta_e))


def main() -> None:
    app()
