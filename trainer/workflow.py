"""Train then export: the steps the CLI's `train` and `export` commands run."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from tqdm import tqdm

from trainer.config import TrainConfig
from trainer.dataset.build import dataset_fingerprint
from trainer.export import export_model
from trainer import data
from trainer.train import VALIDATION_PHOTO_CROPS, GANTrainer, TrainResult, configure_runtime, prepare_run

PATH_OPTIONS = ("data", "run_dir", "models_dir")


def train_and_export(config: TrainConfig, *, export: bool = True) -> Path | None:
    trainer = prepare_run(config)
    result = trainer.fit()
    reason = "CPU-time budget reached" if result.stopped_by_budget else "done"
    tqdm.write(
        f"{reason}: {result.epochs_completed} epochs, {result.steps} steps, {result.cpu_minutes:.1f} CPU-minutes"
    )
    if not export or not trainer.is_chief:  # one export, by the chief
        return None
    return _export(trainer, result, evaluate=True)


def export_run(
    run_dir: Path, *, models_dir: Path | None = None, evaluate: bool = True, temperature: float | None = None
) -> Path:
    """Export the newest checkpoint of ``run_dir``; ``temperature`` sets the classes head's decoding."""
    trainer = _restored(run_dir)
    if models_dir is not None:
        trainer.config.models_dir = models_dir
    if temperature is not None:
        trainer.architecture.temperature = temperature
    return _export(trainer, trainer.result(), evaluate=evaluate)


TEMPERATURES = (0.2, 0.3, 0.38, 0.5, 0.7, 1.0)
COLOURFULNESS_FLOOR = 0.6  # of the truth's: below it, colours look washed out


def choose_temperature(run_dir: Path, temperatures: tuple[float, ...] = TEMPERATURES) -> tuple[float, dict[float, dict]]:
    """Score the run's classes head on validation at each annealed-mean temperature.

    Returns the one with the lowest ΔE2000 among those at least ``COLOURFULNESS_FLOOR`` as
    colourful as the truth (the most colourful one if none is), and every temperature's metrics.
    """
    from trainer.evaluate import in_memory_colorizer, score

    trainer = _restored(run_dir)
    if getattr(trainer.architecture, "bins", None) is None:
        raise ValueError(f"{run_dir} has no classes head: it has no temperature to choose.")
    holdout = data.holdout_split(trainer.config.data)
    results = {}
    for temperature in temperatures:
        trainer.architecture.temperature = temperature
        colorize = in_memory_colorizer(trainer.predict_rgb, trainer.architecture.native_size)
        results[temperature] = score(
            colorize, trainer.config.data, split=holdout, per_photo=VALIDATION_PHOTO_CROPS, label=f"T={temperature}", keep=0
        ).metrics
    vivid = [t for t in temperatures if results[t]["colorfulness_ratio"] >= COLOURFULNESS_FLOOR]
    best = min(vivid, key=lambda t: results[t]["ciede2000"]) if vivid else max(
        temperatures, key=lambda t: results[t]["colorfulness_ratio"]
    )
    return best, results


def _restored(run_dir: Path) -> GANTrainer:
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a training run (no config.json)")
    config = TrainConfig.load(config_path)
    trainer = GANTrainer(config, configure_runtime(config, distribute=False))  # one process exports
    if not trainer.restore():
        raise FileNotFoundError(f"No checkpoint in {run_dir / 'checkpoints'}")
    return trainer


def _export(trainer: GANTrainer, result: TrainResult, *, evaluate: bool) -> Path:
    config = trainer.config
    evaluator = None
    holdout = data.holdout_split(config.data)
    if evaluate and (config.data / f"{holdout}_x").is_dir():
        from trainer.evaluate import evaluate as evaluate_model

        evaluator = partial(evaluate_model, data_dir=config.data, split=holdout, per_photo=VALIDATION_PHOTO_CROPS)
    decoding = {"temperature": trainer.architecture.temperature} if getattr(trainer.architecture, "bins", None) is not None else {}

    version_dir = export_model(
        trainer.serving_generator,
        trainer.architecture,
        config.models_dir,
        metadata={
            "dataset_fingerprint": dataset_fingerprint(config.data),
            "epochs": result.epochs_completed,
            "steps": result.steps,
            "cpu_minutes": round(result.cpu_minutes, 2),
            "metrics_split": holdout,
            **decoding,
            # Folder names only: the training machine's paths mean nothing where the model is served.
            "train": {key: Path(value).name if key in PATH_OPTIONS else value for key, value in config.to_json().items()},
        },
        evaluate=evaluator,
    )
    tqdm.write(f"exported {version_dir}")
    return version_dir

