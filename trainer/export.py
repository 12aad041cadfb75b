"""Export a trained generator as a SavedModel version folder, per the contract in core/contract.py.

The version appears whole or not at all: everything is written under a hidden temporary folder
beside the versions, then renamed into place. Staging folders that a killed export left behind are
removed by the next export.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from colorizer_core import contract
from colorizer_core.metadata import ModelMetadata, ValidationMetrics
from colorizer_trainer.gans import Architecture
from colorizer_trainer.photo_gain import with_scene_summary

STAGING_PREFIX = ".export-"
STALE_STAGING_S = 24 * 3600  # another machine's staging folder untouched this long is abandoned


class ServingModule(tf.Module):
    """Holds the generator and exposes the contract's ``gray -> rgb`` signature."""

    def __init__(self, generator: keras.Model, architecture: Architecture) -> None:
        super().__init__()
        self.generator = generator
        self._architecture = architecture
        self.photo_gain = architecture.photo_gain  # its weights travel in the SavedModel
        if self.photo_gain is not None:
            # the same layers, one more output
            choice = self.photo_gain.choice
            self.generator_and_scene = with_scene_summary(generator, scene=choice.scene, doubt=choice.doubt)
        side = None if architecture.accepts_other_sizes else architecture.native_size
        specs = [tf.TensorSpec([None, side, side, 1], tf.float32, name=contract.INPUT_KEY)]
        if architecture.takes_hints:
            specs.append(tf.TensorSpec([None, side, side, contract.HINT_CHANNELS], tf.float32, name=contract.HINTS_KEY))
        # Plain TensorFlow ops, so no AutoGraph: it re-reads source files, which may have changed on disk since.
        serve = self._serve_with_hints if architecture.takes_hints else self._serve
        self.serve = tf.function(serve, input_signature=specs, autograph=False)

    def _serve(self, gray: tf.Tensor) -> dict[str, tf.Tensor]:
        return {contract.OUTPUT_KEY: self._colorize(gray, gray)}

    def _serve_with_hints(self, gray: tf.Tensor, hints: tf.Tensor) -> dict[str, tf.Tensor]:
        return {contract.OUTPUT_KEY: self._colorize(gray, [gray, hints], hints)}

    def _colorize(self, gray: tf.Tensor, inputs, hints: tf.Tensor | None = None) -> tf.Tensor:
        if self.photo_gain is None:
            return self._architecture.to_rgb(gray, self.generator(inputs, training=False), hints=hints)
        output, scene_summary = self.generator_and_scene(inputs, training=False)
        return self._architecture.to_rgb(gray, output, photo_gains=self.photo_gain(scene_summary), hints=hints)


def float32_copy(generator: keras.Model, architecture: Architecture) -> keras.Model:
    """The same weights in a float32 generator, so a model trained in mixed precision serves on CPUs."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = architecture.build_generator()
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(generator.get_weights())
    return copy


def restore_weights(version_dir: Path, generator: keras.Model, architecture: Architecture) -> None:
    """Load the weights of the exported version in ``version_dir`` into ``generator``, built as its
    architecture (and into its ``photo_gain``, made to restore into where the version has one)."""
    parts = {"generator": generator}
    if architecture.photo_gain is not None:
        parts["photo_gain"] = architecture.photo_gain
    checkpoint = tf.train.Checkpoint(**parts)  # named as ServingModule's attributes
    variables = version_dir / contract.VARIABLES_INDEX_FILE.removesuffix(".index")
    checkpoint.read(str(variables)).expect_partial().assert_existing_objects_matched()


def next_version(root: Path) -> int:
    taken = [int(child.name) for child in root.iterdir() if child.name.isdigit()] if root.is_dir() else []
    return max(taken, default=0) + 1


Evaluator = Callable[[Path], dict[str, float]]


def export_model(
    generator: keras.Model,
    architecture: Architecture,
    models_root: Path,
    metadata: dict[str, Any],
    evaluate: Evaluator | None = None,
) -> Path:
    """Write ``models_root/<next version>/`` and return it.

    ``metadata`` holds the ``colorizer.json`` fields that describe the training (a field the file
    does not have is refused before anything is written). ``evaluate``, if given, is run on the
    finished SavedModel before it is published, and its metrics are recorded in ``colorizer.json``.
    """
    document = ModelMetadata(
        arch=architecture.name,
        size=architecture.native_size,
        accepts_other_sizes=architecture.accepts_other_sizes,
        size_multiple=architecture.size_multiple,
        hints=architecture.takes_hints,
        created=datetime.now(timezone.utc).replace(microsecond=0),
        **metadata,
    )
    models_root.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(models_root)
    staging = models_root / f"{STAGING_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    try:
        module = ServingModule(float32_copy(generator, architecture), architecture)
        tf.saved_model.save(module, str(staging), signatures={contract.SIGNATURE: module.serve})
        document.write(staging)  # the evaluator loads the staged model, metadata included
        if evaluate is not None:
            document = document.model_copy(update={"metrics": ValidationMetrics.model_validate(evaluate(staging))})
            document.write(staging)
        return _publish(staging, models_root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_stale_staging(models_root: Path, *, now: float | None = None) -> list[Path]:
    """Remove the staging folders of exports that can no longer finish; return them.

    One named for this machine is stale once its process has gone; any (another machine's, or one
    from before names carried the process) once nothing in it has changed for ``STALE_STAGING_S``.
    """
    now = time.time() if now is None else now
    removed = []
    for folder in models_root.glob(f"{STAGING_PREFIX}*"):
        if folder.is_dir() and _abandoned(folder, now):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _abandoned(folder: Path, now: float) -> bool:
    host, _, pid = folder.name[len(STAGING_PREFIX) :].rpartition("-")[0].rpartition("-")
    if host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid)):
        return True
    try:
        newest = max(path.stat().st_mtime for path in [folder, *folder.rglob("*")])
    except OSError:  # being removed or renamed right now
        return False
    return now - newest > STALE_STAGING_S


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _publish(staging: Path, models_root: Path) -> Path:
    """Rename the finished folder to the next free version (retrying if another export won the race)."""
    while True:
        target = models_root / str(next_version(models_root))
        try:
            os.rename(staging, target)
            return target
        except OSError:
            if not target.exists():
                raise
