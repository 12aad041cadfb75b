"""The training loop: resumable epochs of the GAN's train step, with the loop's duties as callbacks.

Rerunning the same command resumes from the last checkpoint, even mid-epoch: each epoch's files
and shuffle are seeded by its number, so the batches already trained on are skipped exactly.
Every ``validate_every_min`` CPU-minutes the weight average is scored on the validation split
(``validation.csv`` in the run folder: the learning curve every choice is made on).

Under a ``tf.distribute`` strategy (trainer/distribution.py) every worker runs this same loop:
each step's files are split between workers and replicas, every decision (stop for the CPU budget
or a NaN, checkpoint now, validate now) is taken on values all-reduced in the step, so no worker
is left waiting in a collective, and only the chief keeps checkpoints, validates, logs and exports.

Why not ``keras.Model.fit`` with ``BackupAndRestore``, as the Keras GAN examples do: Keras 3's
``BackupAndRestore`` restores only the epoch (a kill mid-epoch retrains it from its start), keeps
its own ``.weights.h5`` format (the runs' ``tf.train.Checkpoint`` ones could not resume), and cannot
checkpoint or stop on a clock all workers agree on. So the class is split along the same lines
instead: the step (trainer/step.py), the checkpoints (trainer/checkpoints.py) and the loop's duties
as callbacks (trainer/callbacks.py) that this loop calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

import keras
import tensorflow as tf
from tqdm import tqdm

from colorizer_trainer import data, distribution
from colorizer_trainer.callbacks import (
    VALIDATION_FILE,
    VALIDATION_PHOTO_CROPS,
    CallbackList,
    CpuBudget,
    CpuClock,
    NanCheck,
    PeriodicCheckpoint,
    PeriodicValidation,
    ProgressBar,
    SampleGrids,
    StepOutcome,
    TensorBoard,
    TrainingDiverged,
    Validation,
)
from colorizer_trainer.checkpoints import Checkpoints, ConfigMismatch, CorruptCheckpoint, RunCounters
from colorizer_trainer.config import TrainConfig
from colorizer_trainer.gans import Architecture, architecture_for
from colorizer_trainer.step import GANStep

__all__ = [
    "VALIDATION_FILE",
    "VALIDATION_PHOTO_CROPS",
    "ConfigMismatch",
    "CorruptCheckpoint",
    "GANTrainer",
    "TrainResult",
    "TrainingDiverged",
    "configure_runtime",
    "prepare_run",
]

SAMPLE_COUNT = 8  # validation photos in each sample grid
DISTRIBUTION_FILE = "distribution.json"  # the global batch the run's step counts are in


@dataclass
class TrainResult:
    epochs_completed: int
    steps: int
    cpu_minutes: float
    stopped_by_budget: bool


def use_threads(threads: int | None) -> None:
    """Run TensorFlow's ops on ``threads`` threads (``None``: its default); before its first op runs."""
    if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def configure_runtime(config: TrainConfig, *, distribute: bool = True) -> tf.distribute.Strategy:
    """Threads, the distribution strategy (``config.strategy``, else the default one) and precision.

    Must run before TensorFlow runs any op: both threads and multi-worker need that.
    """
    use_threads(config.threads)
    strategy = distribution.choose_strategy(config.strategy) if distribute else tf.distribute.get_strategy()
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    use_mixed = config.mixed_precision == "on" or (config.mixed_precision == "auto" and has_gpu)
    keras.config.set_dtype_policy("mixed_float16" if use_mixed else "float32")
    keras.utils.set_random_seed(config.seed)
    return strategy


class GANTrainer:
    """A run: its train step (``gan``), its counters and checkpoints, and the loop that trains it."""

    def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> None:
        self.config = config
        self.architecture: Architecture = architecture_for(config)
        self.strategy = strategy or distribution.choose_strategy(config.strategy)
        self.is_chief = distribution.is_chief(self.strategy)
        self.global_batch_size = config.batch_size * self.strategy.num_replicas_in_sync
        self.lr = config.lr if config.lr is not None else self.architecture.default_lr
        self.counters = RunCounters()
        self.gan = GANStep(
            self.architecture,
            self.strategy,
            learning_rate=self.lr,
            ema_decay=config.ema_decay if config.ema_decay is not None else self.architecture.default_ema_decay,
            global_batch_size=self.global_batch_size,
            step=self.counters.step,
        )
        self.checkpoints = Checkpoints(
            config.run_dir / "checkpoints", {**self.gan.trackables(), **self.counters.trackables()}, self.strategy
        )

    @cached_property
    def cutouts(self) -> tf.Tensor | None:
        """The objects pasted onto training crops, read when training first needs them: exporting or
        scoring a run neither reads them nor needs their folder to still be there."""
        return None if self.config.paste_objects is None else data.load_cutouts(self.config.paste_objects)

    def restore(self) -> bool:
        """Resume from the newest readable checkpoint, if any. Returns whether one was found."""
        path = self.checkpoints.restore()
        if path is None:
            return False
        self.gan.set_learning_rate(self.lr)  # the checkpoint holds the rate it was saved with
        tqdm.write(f"resumed from {path}: {self.counters.describe()}")
        return True

    def check_global_batch(self) -> None:
        """Step counts are in global batches: a run resumes only with the global batch it began with."""
        path = self.config.run_dir / DISTRIBUTION_FILE
        # Runs from before this file trained on one replica.
        began_with = json.loads(path.read_text())["global_batch_size"] if path.is_file() else self.config.batch_size
        if began_with != self.global_batch_size and self.checkpoints.exist():
            raise ConfigMismatch(
                f"{self.config.run_dir} was trained with a global batch of {began_with} images; this strategy gives "
                f"{self.config.batch_size} on each of {self.strategy.num_replicas_in_sync} replicas = {self.global_batch_size}. "
                "Resume it on as many replicas, or use another --run-dir."
            )
        if self.is_chief and not path.is_file():
            record = {"global_batch_size": self.global_batch_size, "replicas": self.strategy.num_replicas_in_sync}
            path.write_text(json.dumps(record, indent=2) + "\n")

    def fit(self) -> TrainResult:
        """Train until ``config.epochs`` or the CPU budget; checkpoint every epoch and every few minutes."""
        try:
            return self._fit()
        except distribution.PEER_LOST_ERRORS as error:
            if not distribution.is_multi_worker(self.strategy):
                raise
            raise distribution.WorkerLost(
                f"another worker stopped ({type(error).__name__}: {str(error).splitlines()[0][:200]}). "
                f"Restart every worker with the same command: they resume from the last checkpoint in {self.checkpoints.directory}."
            ) from None

    def _fit(self) -> TrainResult:
        config, counters = self.config, self.counters
        sampler = data.EpochSampler(
            config.data,
            crops_per_photo=config.crops_per_photo,
            photos_per_collection=config.photos_per_collection,
            seed=config.seed,
        )
        steps_per_epoch = sampler.files_per_epoch // self.global_batch_size  # batches drop their remainder
        if steps_per_epoch == 0:
            raise ValueError(
                f"The training split has fewer images than one batch. Received: batch_size={config.batch_size}"
                f" on each of {self.strategy.num_replicas_in_sync} replicas"
            )
        clock = CpuClock()
        budget = CpuBudget(counters, config.time_budget_min)
        checkpointing = PeriodicCheckpoint(self.checkpoints, counters, config.checkpoint_every_min)
        callbacks = CallbackList([budget, *self._duties(steps_per_epoch, checkpointing, clock)])
        clock.restart()  # loading the sample photos was not training
        while int(counters.epoch) < config.epochs and not budget.reached:
            epoch = int(counters.epoch)
            files = sampler.epoch_files(epoch)
            batches = iter(
                self.distributed_batches(files, epoch=epoch, first_step=int(counters.step_in_epoch), steps=steps_per_epoch)
            )
            callbacks.on_epoch_begin()
            while (batch := self._next_batch(batches, files)) is not None:
                callbacks.on_step_begin()
                if budget.reached:
                    break
                signals = tf.constant([clock.lap(), float(checkpointing.due())], tf.float32)
                outcome = self._train_one_step(batch, signals)
                callbacks.on_step_end(outcome)
            if not budget.reached:
                counters.finish_epoch()
            callbacks.on_epoch_end(last=budget.reached or int(counters.epoch) == config.epochs)
        callbacks.on_train_end()
        return self.result(stopped_by_budget=budget.reached)

    def _duties(self, steps_per_epoch: int, checkpointing: PeriodicCheckpoint, clock: CpuClock) -> list:
        """The callbacks after the budget, in the order they run; the chief's alone show, log and score."""
        config, counters = self.config, self.counters
        holdout = data.holdout_split(config.data)
        duties = [NanCheck(counters, self.checkpoints.directory)]  # first: a diverged step is never saved
        if not self.is_chief:
            return [*duties, checkpointing, PeriodicValidation(None, counters, clock, config.validate_every_min)]
        progress = ProgressBar(
            counters, epochs=config.epochs, steps_per_epoch=steps_per_epoch, global_batch_size=self.global_batch_size
        )
        tensorboard = TensorBoard(config.run_dir / "logs", counters, progress)
        if holdout is None:  # a final model's dataset: every collection is in train
            return [*duties, progress, checkpointing, tensorboard]
        validation = Validation(self.gan, counters, config.data, holdout, config.run_dir, tensorboard.writer)
        sample_photos = data.holdout_pairs(config.data, SAMPLE_COUNT, holdout)
        return [
            *duties,
            progress,
            checkpointing,
            PeriodicValidation(validation, counters, clock, config.validate_every_min),
            SampleGrids(self.gan, counters, sample_photos, config.run_dir / "samples", every=config.sample_every),
            tensorboard,  # last: it flushes at the end, after the final validation's scalars
        ]

    def _train_one_step(self, batch, signals: tf.Tensor) -> StepOutcome:
        outputs = self.gan.train_step(batch, signals)
        cpu_spent, save_agreed = (float(value) for value in outputs.pop("agreed"))
        self.counters.finish_step(cpu_spent)
        return StepOutcome(losses={name: float(value) for name, value in outputs.items()}, save_agreed=save_agreed > 0)

    def distributed_batches(self, files: list[tuple[str, str]], *, epoch: int, first_step: int, steps: int):
        """The epoch's global batches from ``first_step`` on, each worker reading only its own share."""
        global_batch = self.global_batch_size
        cutouts = self.cutouts  # read here, eagerly, not while tf.distribute builds the dataset

        def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            share = data.pipeline_share(
                first_step * global_batch,
                steps * global_batch,
                global_batch_size=global_batch,
                pipeline=context.input_pipeline_id,
                pipelines=context.num_input_pipelines,
            )
            return data.training_batches(
                [files[index] for index in share],
                indices=share,
                batch_size=context.get_per_replica_batch_size(global_batch),
                seed=(self.config.seed, epoch),
                flips=self.architecture.augment_flips,
                crop=self.architecture.train_crop,
                hints=self.architecture.takes_hints,
                cutouts=cutouts,
                film_share=self.config.film_share,
            )

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    @staticmethod
    def _next_batch(batches, files: list[tuple[str, str]]):
        """The next batch, or None at the epoch's end; a file that cannot be decoded is named."""
        try:
            return next(batches)
        except StopIteration:
            return None
        except data.DECODE_ERRORS as error:
            raise data.find_unreadable(files) or error from None

    def result(self, *, stopped_by_budget: bool = False) -> TrainResult:
        """Where the run stands now, from its checkpointed counters."""
        return TrainResult(
            epochs_completed=int(self.counters.epoch),
            steps=int(self.counters.step),
            cpu_minutes=float(self.counters.cpu_seconds) / 60,
            stopped_by_budget=stopped_by_budget,
        )


def prepare_run(config: TrainConfig) -> GANTrainer:
    """Check the run folder agrees with ``config``, save the config, build and restore the trainer."""
    config.run_dir.mkdir(parents=True, exist_ok=True)
    saved_path = config.run_dir / "config.json"
    if saved_path.exists():
        differences = config.differences(TrainConfig.load(saved_path))
        if differences:
            raise ConfigMismatch(
                f"{config.run_dir} holds a run with different {', '.join(differences)}; "
                "use another --run-dir or the same options to resume it."
            )
    strategy = configure_runtime(config)
    trainer = GANTrainer(config, strategy)
    if trainer.is_chief:
        config.save(saved_path)
    trainer.check_global_batch()
    trainer.restore()
    return trainer
