"""``colorize-train``: wires the trainer's commands together; the work lives in the other modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from colorizer_core.tensorflow_setup import device_summary, quiet_tensorflow
from colorizer_trainer.config import Arch, Head, MixedPrecision, StrategyName, TrainConfig
from colorizer_trainer.dataset import cli as dataset_cli
from colorizer_trainer.evaluate_cli import evaluate_command  # imports TensorFlow only when it runs


app = typer.Typer(no_args_is_help=True, add_completion=False, help="Build datasets, train, export and evaluate colorizers.")


app.add_typer(dataset_cli.app, name="dataset", help="Build the seed's dataset from folders of photos, or scrape one.")
app.command("evaluate")(evaluate_command)


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg="red")
    return typer.Exit(code=1)


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="A dataset made by `colorize-train dataset build`.")],
    arch: Annotated[Arch, typer.Option(help="`unet` (ours, the default) or `seed` (the seed's GAN).")] = "unet",
    epochs: Annotated[int, typer.Option(help="Epochs to train in all (the seed's 200).")] = 200,
    batch_size: Annotated[int, typer.Option(help="Images per step on each replica.")] = 32,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate; default: the architecture's (seed: 5e-4).")] = None,
    head: Annotated[Head, typer.Option(help="Ours: `classes` (a distribution over colours) or `regression` (chroma itself; the default, chosen on validation).")] = "regression",
    l1_weight: Annotated[float, typer.Option(help="Ours, regression head: weight of the chroma L1 term.")] = 100.0,
    adversarial_weight: Annotated[float, typer.Option(help="Ours: weight of the patch-GAN term (0: no discriminator).")] = 0.0,
    crops_per_photo: Annotated[int, typer.Option(help="Files of one source photo used per epoch, at most.")] = 2,
    validate_every_min: Annotated[float, typer.Option(help="CPU-minutes between scores on the validation split.")] = 5.0,
    ema_decay: Annotated[Optional[float], typer.Option(help="Export a moving average of the generator's weights with this decay (0: off); default: the architecture's (ours 0.995, seed 0).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (weights, shuffling, augmentation).")] = 0,
    run_dir: Annotated[Optional[Path], typer.Option(help="Checkpoints, logs and samples; default runs/<arch>.")] = None,
    models_dir: Annotated[Path, typer.Option(help="Where the exported version is written.")] = Path("models/colorizer"),
    sample_every: Annotated[int, typer.Option(help="Epochs between sample grids.")] = 5,
    time_budget_min: Annotated[Optional[float], typer.Option(help="Stop after this much process CPU time (minutes), counted across resumes.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="TensorFlow threads; default all cores.")] = None,
    mixed_precision: Annotated[MixedPrecision, typer.Option(help="auto (on with a GPU), on or off.")] = "auto",
    strategy: Annotated[StrategyName, typer.Option(help="tf.distribute: auto (multi-worker from TF_CONFIG, mirrored with 2+ GPUs, else default), default, mirrored or multi-worker.")] = "auto",
    export: Annotated[bool, typer.Option(help="Export a model version when training ends (the chief does, under multi-worker).")] = True,
) -> None:
    """Train a GAN on DATA; rerunning the same command resumes from the last checkpoint."""
    quiet_tensorflow()
    from colorizer_trainer import runs
    from colorizer_trainer.distribution import WorkerLost
    from colorizer_trainer.train import ConfigMismatch, TrainingDiverged

    try:
        config = TrainConfig(
            data=data,
            arch=arch,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            head=head,
            l1_weight=l1_weight,
            adversarial_weight=adversarial_weight,
            crops_per_photo=crops_per_photo,
            validate_every_min=validate_every_min,
            ema_decay=ema_decay,
            seed=seed,
            run_dir=run_dir or Path("runs") / arch,
            models_dir=models_dir,
            sample_every=sample_every,
            time_budget_min=time_budget_min,
            threads=threads,
            mixed_precision=mixed_precision,
            strategy=strategy,
        )
        typer.echo(f"Training runs on {device_summary()}", err=True)
        runs.train_and_export(config, export=export)
    except (ConfigMismatch, TrainingDiverged, WorkerLost, FileNotFoundError, ValueError) as error:
        raise _fail(error) from None


@app.command("export")
def export_command(
    run_dir: Annotated[Path, typer.Argument(help="A training run folder (holds config.json and checkpoints/).")],
    models_dir: Annotated[Optional[Path], typer.Option(help="Where to write the version; default: the run's.")] = None,
    evaluate: Annotated[bool, typer.Option(help="Record validation metrics in colorizer.json.")] = True,
    temperature: Annotated[Optional[float], typer.Option(help="Classes head: annealed-mean temperature to export (choose it on validation).")] = None,
    chroma_gain: Annotated[Optional[float], typer.Option(help="Ours: scale the exported chroma by this (choose it on validation).")] = None,
) -> None:
    """Export the newest checkpoint of RUN_DIR as the next model version."""
    quiet_tensorflow()
    from colorizer_trainer import runs

    try:
        runs.export_run(run_dir, models_dir=models_dir, evaluate=evaluate, temperature=temperature, chroma_gain=chroma_gain)
    except (FileNotFoundError, ValueError) as error:
        raise _fail(error) from None


@app.command("choose-decoding")
def choose_decoding_command(
    run_dir: Annotated[Path, typer.Argument(help="A training run of our architecture.")],
) -> None:
    """Score RUN_DIR on validation at several chroma gains (and temperatures); print them and the choice."""
    quiet_tensorflow()
    from colorizer_trainer import runs

    try:
        best, results = runs.choose_decoding(run_dir)
    except (FileNotFoundError, ValueError) as error:
        raise _fail(error) from None
    from colorizer_trainer.evaluate import format_table

    typer.echo(format_table(results))
    typer.echo("chosen: " + " ".join(f"--{name.replace('_', '-')} {value}" for name, value in best.items()))


@app.command("hints-curve")
def hints_curve_command(
    model_dir: Annotated[Path, typer.Argument(help="A model version that takes hints.")],
    data: Annotated[Path, typer.Argument(help="A dataset folder.")],
    split: Annotated[str, typer.Option(help="val or test.")] = "test",
    per_photo: Annotated[Optional[int], typer.Option(min=1, help="At most N files of each source photo.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Also draw ΔE2000 against hints to this PNG.")] = None,
    grid: Annotated[Optional[Path], typer.Option(help="Also save gray | no hints | 10 hints | truth rows to this PNG.")] = None,
    grid_rows: Annotated[int, typer.Option(min=1, help="Photos in the grid.")] = 6,
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
