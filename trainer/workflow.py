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
    if not export:
        return None
    return _export(trainer, result, evaluate=True)


def export_run(
    run_dir: Path, *, models_dir: Path | None = None, evaluate: bool = True, temperature: float | None = None
) -> Path:
    """Export the newest checkpoint of ``run_dir``; ``temperature`` sets the classes head's decoding."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a training run (no config.json)")
    config = TrainConfig.load(config_path)
    if models_dir is not None:
        config.models_dir = models_dir
    configure_runtime(config)
    trainer = GANTrainer(config)
    if not trainer.restore():
        raise FileNotFoundError(f"No checkpoint in {run_dir / 'checkpoints'}")
    if temperature is not None:
        trainer.architecture.temperature = temperature
    return _export(trainer, trainer.result(), evaluate=evaluate)


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

