"""Train, choose the decoding on validation, export: the steps the CLI's `train`, `choose-decoding`,
`fit-photo-gain` and `export` commands run."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from colorizer_core.contract import METADATA_FILE
from colorizer_core.imaging import apply_chroma, model_input
from colorizer_core.metadata import ModelMetadata
from colorizer_trainer import data, photo_gain
from colorizer_trainer.config import (
    CHROMA_GAINS,
    CHROMA_THRESHOLDS,
    PHOTO_GAIN_LEANS,
    PHOTO_GAINS,
    RIDGE_STRENGTH,
    TEMPERATURES,
    TrainConfig,
)
from colorizer_trainer.dataset.build import dataset_fingerprint
from colorizer_trainer.evaluate import (
    BATCH_SIZE,
    Scored,
    Tally,
    find_pairs,
    gray_as_rgb,
    image_scores,
    in_memory_colorizer,
    load_pair,
    score,
)
from colorizer_trainer.evaluate import evaluate as evaluate_model
from colorizer_trainer.export import export_model, restore_weights
from colorizer_trainer.gans import Architecture, architecture_for
from colorizer_trainer.photo_gain import PhotoGain, PhotoGainFit
from colorizer_trainer.train import VALIDATION_PHOTO_CROPS, GANTrainer, TrainResult, configure_runtime, prepare_run

PATH_OPTIONS = ("data", "run_dir", "models_dir", "paste_objects")


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
    run_dir: Path,
    *,
    models_dir: Path | None = None,
    evaluate: bool = True,
    size: int | None = None,
    photo_gain: PhotoGainFit | None = None,
    **decoding: float | None,
) -> Path:
    """Export the newest checkpoint of ``run_dir``, with the ``size`` it sees photos at and the
    ``decoding`` choices (``temperature``, ``chroma_gain``, ``chroma_threshold``) made on validation; ``None`` keeps the architecture's.
    A ``photo_gain`` (``fit_photo_gain``) picks each photo's gain, under the threshold it was fitted with."""
    trainer = _restored(run_dir)
    if models_dir is not None:
        trainer.config.models_dir = models_dir
    _choose(trainer.architecture, size, decoding, photo_gain)
    return _export(trainer, trainer.result(), evaluate=evaluate)


def export_version_again(
    version_dir: Path,
    *,
    models_dir: Path | None = None,
    size: int | None = None,
    photo_gain: PhotoGainFit | None = None,
    **decoding: float | None,
) -> Path:
    """Export the weights of an exported version again (by default as the next version beside it),
    with another ``size``, ``decoding`` or ``photo_gain`` (see ``export_run``): a choice made on
    validation after the training run is gone. Its validation metrics are not carried over (they
    were the old decoding's)."""
    metadata = ModelMetadata.read(version_dir)
    if metadata.train is None:
        raise ValueError(f"{version_dir / METADATA_FILE} records no training options to rebuild its network from.")
    architecture = architecture_for(TrainConfig.from_json(metadata.train))
    _choose(architecture, metadata.size, metadata.model_dump(include=set(architecture.decoding())))  # as exported
    generator = architecture.build_generator()
    if metadata.photo_gain is not None:
        architecture.photo_gain = PhotoGain.to_restore(metadata.photo_gain, generator)
    restore_weights(version_dir, generator, architecture)
    _choose(architecture, size, decoding, photo_gain)  # then as asked
    carried = metadata.model_dump(include={"dataset_fingerprint", "epochs", "steps", "cpu_minutes", "train"}, exclude_none=True)
    models_root = version_dir.parent if models_dir is None else models_dir
    version = export_model(generator, architecture, models_root, metadata=carried | _decoding_record(architecture))
    tqdm.write(f"exported {version}")
    return version


def _choose(
    architecture: Architecture, size: int | None, decoding: dict[str, float | None], photo_gain: PhotoGainFit | None = None
) -> None:
    """Set the size and decoding choices that are not ``None``; the others stay as they are."""
    if size is not None:
        architecture.set_native_size(size)
    if photo_gain is not None:
        threshold = decoding.get("chroma_threshold")
        if threshold is not None and threshold != photo_gain.chroma_threshold:
            raise ValueError(
                f"The gain per photo was fitted under chroma threshold {photo_gain.chroma_threshold}. Received: chroma_threshold={threshold}"
            )
        decoding = decoding | {"chroma_threshold": photo_gain.chroma_threshold}
        architecture.photo_gain = PhotoGain.from_fit(photo_gain)
    architecture.set_decoding(**{name: value for name, value in decoding.items() if value is not None})


def _decoding_record(architecture: Architecture) -> dict:
    """The decoding choices as ``colorizer.json`` records them (a gain per photo in place of one for all)."""
    if architecture.photo_gain is None:
        return architecture.decoding()
    one_for_all = {name: value for name, value in architecture.decoding().items() if name != "chroma_gain"}
    return one_for_all | {"photo_gain": architecture.photo_gain.choice}


GRAY_LABEL = "gray input"


def choose_decoding(
    run_dirs: Sequence[Path],
    *,
    sizes: Sequence[int] | None = None,
    gains: Sequence[float] = CHROMA_GAINS,
    thresholds: Sequence[float] = CHROMA_THRESHOLDS,
) -> tuple[dict[str, float], dict[str, dict]]:
    """Score runs on their validation splits at each decoding: the size photos are seen at (default:
    the architecture's native size), the chroma threshold and gain and, for a classes head, the
    temperature.

    Each run is scored on its own validation split, and its images are pooled with the other runs':
    runs trained on folds of the collections (`dataset folds`) let the choice see every collection.
    Returns the decoding ``pick_decoding`` picks, and every decoding's metrics, gray's included.
    """
    tallies: dict[str, Tally] = defaultdict(Tally)
    choices: dict[str, dict[str, float]] = {}
    for run_dir in run_dirs:
        for label, choice, scored in _decodings_scored(run_dir, sizes, thresholds, gains):
            tallies[label] += scored.tally
            if choice is not None:
                choices[label] = choice
    results = {label: tally.summary() for label, tally in tallies.items()}
    return choices[pick_decoding(results, list(choices))], results


CHOICE_METRIC = "ciede2000_by_collection"  # each collection weighs the same, as unseen collections will


def pick_decoding(results: dict[str, dict[str, float]], labels: Sequence[str]) -> str:
    """The most colourful of ``labels`` whose ΔE2000, averaged per collection, stays below the gray
    input's (colour right more often than wrong, in most collections); the lowest-ΔE one if none does."""
    gray_delta_e = results[GRAY_LABEL][CHOICE_METRIC]
    right_more_often = [label for label in labels if results[label][CHOICE_METRIC] < gray_delta_e]
    if right_more_often:
        return max(right_more_often, key=lambda label: results[label]["colorfulness_ratio"])
    return min(labels, key=lambda label: results[label][CHOICE_METRIC])


def _decodings_scored(
    run_dir: Path, sizes: Sequence[int] | None, thresholds: Sequence[float], gains: Sequence[float]
) -> Iterator[tuple[str, dict[str, float] | None, Scored]]:
    """``(label, decoding, scores)`` on the run's validation split: the gray input's (decoding None), then each decoding's."""
    trainer = _restored(run_dir)
    architecture, data_dir = trainer.architecture, trainer.config.data
    if not architecture.decoding():
        raise ValueError(f"{run_dir} trains the {architecture.name} architecture: it has no decoding to choose.")
    holdout = data.holdout_split(data_dir)
    if holdout is None:
        raise ValueError(f"{run_dir} trains on {data_dir}, which holds no validation split to choose on.")
    scored = partial(score, data_dir=data_dir, split=holdout, per_photo=VALIDATION_PHOTO_CROPS, keep=0)
    yield GRAY_LABEL, None, scored(gray_as_rgb, label="gray")
    temperatures = TEMPERATURES if "temperature" in architecture.decoding() else (None,)
    grid = itertools.product(sizes or (architecture.native_size,), temperatures, thresholds, gains)
    for size, temperature, threshold, gain in grid:
        decoding = {"chroma_threshold": threshold, "chroma_gain": gain}
        decoding |= {"temperature": temperature} if temperature is not None else {}
        architecture.set_native_size(size)
        architecture.set_decoding(**decoding)
        choice = {"size": size} | decoding
        label = ", ".join(f"{name} {value}" for name, value in choice.items())
        yield label, choice, scored(in_memory_colorizer(trainer.gan.predict_rgb, size), label=label)


PHOTO_GAIN_LABEL = "gain per photo, lean {}"


def fit_photo_gain(
    run_dirs: Sequence[Path],
    *,
    chroma_threshold: float,
    gains: Sequence[float] = PHOTO_GAINS,
    leans: Sequence[float] = PHOTO_GAIN_LEANS,
    strength: float = RIDGE_STRENGTH,
    scene: bool = True,
    doubt: bool = False,
) -> tuple[PhotoGainFit, dict[str, dict]]:
    """Fit the choice of a gain per photo (trainer/photo_gain.py) on the validation photos of runs
    trained on folds of the collections, and pick its lean.

    Each run's photos are scored at every gain, under ``chroma_threshold``. Each lean is judged
    cross-fitted, each run's photos getting their gains from a fit on the other runs' photos, and
    picked by ``pick_decoding``'s rule; the fit returned is on every run's photos. It reads the scene
    if ``scene`` and the members' doubt if ``doubt``. Returns it, and the metrics of the gray input, of
    each gain for every photo and of each lean.
    """
    if len(run_dirs) < 2:
        raise ValueError("A gain per photo is fitted on two or more runs trained on folds (`dataset folds`), each judged by a fit on the others.")
    held_out = [_held_out_scores(run_dir, chroma_threshold, gains, scene=scene, doubt=doubt) for run_dir in run_dirs]
    summaries = np.concatenate([run.summaries for run in held_out])
    scores = [photo for run in held_out for photo in run.scores]  # per photo, per gain
    collections = [collection for run in held_out for collection in run.collections]
    runs = np.concatenate([np.full(len(run.scores), index) for index, run in enumerate(held_out)])
    delta_e = np.array([[at_gain["ciede2000"] for at_gain in photo] for photo in scores])

    options = {GRAY_LABEL: [gray for run in held_out for gray in run.gray_scores]}
    options |= {f"gain {gain}": [photo[index] for photo in scores] for index, gain in enumerate(gains)}
    choices = photo_gain.cross_fitted_choices(summaries, delta_e, runs, gains=gains, leans=leans, strength=strength)
    for lean, chosen in choices.items():
        options[PHOTO_GAIN_LABEL.format(lean)] = [photo[index] for photo, index in zip(scores, chosen, strict=True)]
    results = {label: _summary(photo_scores, collections) for label, photo_scores in options.items()}

    lean_labels = [PHOTO_GAIN_LABEL.format(lean) for lean in leans]
    lean = leans[lean_labels.index(pick_decoding(results, lean_labels))]
    fit = photo_gain.fit_ridge(summaries, delta_e, gains=gains, chroma_threshold=chroma_threshold, strength=strength)
    return replace(fit, lean=lean, fitted_on=tuple(run_dir.name for run_dir in run_dirs), scene=scene, doubt=doubt), results


@dataclass
class _HeldOut:
    """A run's validation photos: each one's scene summary, scores at each gain and as gray, and collection."""

    summaries: np.ndarray
    scores: list[list[dict[str, float]]]
    gray_scores: list[dict[str, float]]
    collections: list[str | None]


def _held_out_scores(
    run_dir: Path, chroma_threshold: float, gains: Sequence[float], *, scene: bool, doubt: bool
) -> _HeldOut:
    trainer = _restored(run_dir)
    architecture, data_dir = trainer.architecture, trainer.config.data
    holdout = data.holdout_split(data_dir)
    if holdout is None:
        raise ValueError(f"{run_dir} trains on {data_dir}, which holds no validation split to fit on.")
    generator_and_scene = photo_gain.with_scene_summary(trainer.gan.serving_generator, scene=scene, doubt=doubt)
    pairs = find_pairs(data_dir, split=holdout, per_photo=VALIDATION_PHOTO_CROPS)
    summaries, scores, gray_scores = [], [], []
    for start in tqdm(range(0, len(pairs), BATCH_SIZE), desc=f"score {run_dir.name} at {len(gains)} gains", unit="batch"):
        loaded = [load_pair(pair) for pair in pairs[start : start + BATCH_SIZE]]
        gray = tf.constant(np.stack([model_input(photo, architecture.native_size) for photo, _ in loaded]))
        output, summary = generator_and_scene(trainer.gan.generator_inputs(gray), training=False)
        summaries.append(summary.numpy())
        at_gains = []
        for gain in gains:
            architecture.set_decoding(chroma_gain=gain, chroma_threshold=chroma_threshold)
            at_gains.append(architecture.to_rgb(gray, output).numpy())
        for index, (photo, truth) in enumerate(loaded):
            true = np.asarray(truth)
            scores.append([image_scores(np.asarray(apply_chroma(photo, rgb[index]).convert("RGB")), true) for rgb in at_gains])
            gray_scores.append(image_scores(np.asarray(photo.convert("RGB")), true))
    return _HeldOut(np.concatenate(summaries), scores, gray_scores, [pair.collection for pair in pairs])


def _summary(scores: Sequence[dict[str, float]], collections: Sequence[str | None]) -> dict[str, float]:
    tally = Tally()
    for photo, collection in zip(scores, collections, strict=True):
        tally.add_scores(photo, collection)
    return tally.summary()


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
    if evaluate and holdout is not None:
        evaluator = partial(evaluate_model, data_dir=config.data, split=holdout, per_photo=VALIDATION_PHOTO_CROPS)
    decoding = _decoding_record(trainer.architecture)

    version_dir = export_model(
        trainer.gan.serving_generator,
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
            "train": {key: Path(value).name if key in PATH_OPTIONS and value else value for key, value in config.to_json().items()},
        },
        evaluate=evaluator,
    )
    tqdm.write(f"exported {version_dir}")
    return version_dir

