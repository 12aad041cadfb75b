"""A run's checkpoints: the train step's weights and optimizers with the loop's counters, saved
together so a run resumes exactly where it stopped, and read back from the newest readable one.

Under a multi-worker strategy every worker saves, as TensorFlow requires, but only the chief's
checkpoints are kept (trainer/distribution.py); every worker restores the chief's.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import tensorflow as tf
from tqdm import tqdm

from colorizer_trainer import distribution

CHECKPOINTS_KEPT = 3
CHECKPOINT_INDEX = re.compile(r"ckpt-(\d+)\.index")
# What TensorFlow raises for a truncated or overwritten checkpoint (a plain OpError, for a short index).
UNREADABLE_CHECKPOINT_ERRORS = (tf.errors.OpError, IndexError)


class ConfigMismatch(ValueError):
    """The run folder holds a run with a different configuration."""


class CorruptCheckpoint(ValueError):
    """Checkpoints exist but none of them can be read."""


class RunCounters:
    """Where the loop stands: plain variables outside the strategy (not mirrored), read on the host.

    Every worker moves them by the same all-reduced amounts, so they agree everywhere.
    """

    def __init__(self) -> None:
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.cpu_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="cpu_seconds")

    def trackables(self) -> dict[str, tf.Variable]:
        return dict(epoch=self.epoch, step_in_epoch=self.step_in_epoch, step=self.step, cpu_seconds=self.cpu_seconds)

    def finish_step(self, cpu_seconds: float) -> None:
        self.step.assign_add(1)
        self.step_in_epoch.assign_add(1)
        self.cpu_seconds.assign_add(cpu_seconds)

    def finish_epoch(self) -> None:
        self.epoch.assign_add(1)
        self.step_in_epoch.assign(0)

    def describe(self) -> str:
        return (
            f"epoch {int(self.epoch) + 1}, {int(self.step_in_epoch)} steps into it, "
            f"{float(self.cpu_seconds) / 60:.1f} CPU-minutes so far"
        )


class Checkpoints:
    """Saves ``trackables`` into ``directory`` (``ckpt-<step>``, the newest few kept) and restores them."""

    def __init__(self, directory: Path, trackables: dict[str, object], strategy: tf.distribute.Strategy) -> None:
        self.directory = directory  # the chief's: what every worker restores from
        self.is_chief = distribution.is_chief(strategy)
        self.checkpoint = tf.train.Checkpoint(**trackables)
        write_dir = distribution.checkpoint_write_dir(directory, strategy)
        if write_dir != directory:
            shutil.rmtree(write_dir, ignore_errors=True)  # left by a killed worker
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(write_dir), max_to_keep=CHECKPOINTS_KEPT)

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def exist(self) -> bool:
        return bool(checkpoint_candidates(self.directory))

    def save(self, step: int) -> None:
        """Checkpoint, on every worker as TensorFlow requires; only the chief's copy is kept."""
        self.manager.save(checkpoint_number=step)
        if not self.is_chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)

    def restore(self) -> str | None:
        """Restore the newest readable checkpoint; returns its path, or None when there is none.

        A checkpoint that cannot be read (a kill or a full disk mid-write) is reported and the one
        before it is tried; every worker reads the chief's, so all resume from the same one.
        """
        unreadable = []
        for path in checkpoint_candidates(self.directory):
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except AssertionError as error:
                raise ConfigMismatch(
                    f"{path} does not hold everything this configuration trains "
                    f"(was it made with other options?): {str(error).splitlines()[0]}"
                ) from None
            except UNREADABLE_CHECKPOINT_ERRORS as error:
                unreadable.append(path)
                tqdm.write(f"warning: {path} cannot be read ({type(error).__name__}); trying the checkpoint before it")
                continue
            return path
        if unreadable:
            raise CorruptCheckpoint(
                f"No checkpoint in {self.directory} can be read ({', '.join(Path(p).name for p in unreadable)}); "
                "move them away to start over."
            )
        return None


def checkpoint_candidates(directory: Path) -> list[str]:
    """The checkpoints in ``directory``, newest (highest step) first, whatever its index file says."""
    found = [CHECKPOINT_INDEX.fullmatch(path.name) for path in Path(directory).glob("ckpt-*.index")]
    steps = sorted((int(match.group(1)) for match in found if match), reverse=True)
    return [str(Path(directory) / f"ckpt-{step}") for step in steps]
