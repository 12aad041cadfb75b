"""The training loop: distributed train step, resumable checkpoints, progress, validation, samples.

Rerunning the same command resumes from the last checkpoint, even mid-epoch: each epoch's files
and shuffle are seeded by its number, so the batches already trained on are skipped exactly.
Every ``validate_every_min`` CPU-minutes the weight average is scored on the validation split
(``validation.csv`` in the run folder: the learning curve every choice is made on).

Under a ``tf.distribute`` strategy (trainer/distribution.py) every worker runs this same loop:
each step's files are split between workers and replicas, every decision (stop for the CPU budget
or a NaN, checkpoint now, validate now) is taken on values all-reduced in the step, so no worker
is left waiting in a collective, and only the chief keeps checkpoints, validates, logs and exports.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf
from tqdm import tqdm

from colorizer_trainer import data, distribution, evaluate, samples
from colorizer_trainer.gans import Architecture, get_architecture
from colorizer_trainer.config import TrainConfig

SAMPLE_COUNT = 8  # validation photos in each sample grid
VALIDATION_PHOTO_CROPS = 2  # files of each source photo scored at each validation
VALIDATION_FILE = "validation.csv"
CHECKPOINTS_KEPT = 3
DISTRIBUTION_FILE = "distribution.json"  # the global batch the run's step counts are in
CHECKPOINT_INDEX = re.compile(r"ckpt-(\d+)\.index")
# What TensorFlow raises for a truncated or overwritten checkpoint (a plain OpError, for a short index).
UNREADABLE_CHECKPOINT_ERRORS = (tf.errors.OpError, IndexError)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class ConfigMismatch(ValueError):
    """The run folder holds a run with a different configuration."""


class CorruptCheckpoint(ValueError):
    """Checkpoints exist but none of them can be read."""


@dataclass
class TrainResult:
    epochs_completed: int
    steps: int
    cpu_minutes: float
    stopped_by_budget: bool


def configure_runtime(config: TrainConfig, *, distribute: bool = True) -> tf.distribute.Strategy:
    """Threads, the distribution strategy (``config.strategy``, else the default one) and precision.

    Must run before TensorFlow runs any op: both threads and multi-worker need that.
    """
    if config.threads and tf.config.threading.get_intra_op_parallelism_threads() != config.threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(config.threads)
    strategy = distribution.choose_strategy(config.strategy) if distribute else tf.distribute.get_strategy()
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    use_mixed = config.mixed_precision == "on" or (config.mixed_precision == "auto" and has_gpu)
    keras.config.set_dtype_policy("mixed_float16" if use_mixed else "float32")
    keras.utils.set_random_seed(config.seed)
    return strategy


class GANTrainer:
    def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> None:
        self.config = config
        self.architecture: Architecture = get_architecture(
            config.arch,
            head=config.head,
            l1_weight=config.l1_weight,
            adversarial_weight=config.adversarial_weight,
            label_softening=config.label_softening,
        )
        self.strategy = strategy or distribution.choose_strategy(config.strategy)
        self.is_chief = distribution.is_chief(self.strategy)
        self.global_batch_size = config.batch_size * self.strategy.num_replicas_in_sync
        self.lr = lr = config.lr if config.lr is not None else self.architecture.default_lr
        with self.strategy.scope():
            self.generator = self.architecture.build_generator()
            self.discriminator = self.architecture.build_discriminator()
            self.generator_optimizer = self._optimizer(lr)
            # Built now, not at the first step, so a checkpoint restores into them immediately.
            self.generator_optimizer.build(self.generator.trainable_variables)
            if self.discriminator is not None:
                self.discriminator_optimizer = self._optimizer(lr)
                self.discriminator_optimizer.build(self.discriminator.trainable_variables)
            self.ema_decay = config.ema_decay if config.ema_decay is not None else self.architecture.default_ema_decay
            self.generator_average = self._averaged_copy(self.generator) if self.ema_decay else None
        # The loop's counters: plain variables outside the strategy (not mirrored), read on the host.
        # Every worker moves them by the same all-reduced amounts, so they agree everywhere.
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.cpu_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="cpu_seconds")
        tracked = dict(
            generator=self.generator,
            generator_optimizer=self.generator_optimizer,
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            step=self.step,
            cpu_seconds=self.cpu_seconds,
        )
        if self.generator_average is not None:
            tracked["generator_average"] = self.generator_average
        if self.discriminator is not None:
            tracked.update(discriminator=self.discriminator, discriminator_optimizer=self.discriminator_optimizer)
        self.checkpoint = tf.train.Checkpoint(**tracked)
        self.checkpoint_dir = config.run_dir / "checkpoints"  # the chief's: what every worker restores from
        write_dir = distribution.checkpoint_write_dir(self.checkpoint_dir, self.strategy)
        if write_dir != self.checkpoint_dir:
            shutil.rmtree(write_dir, ignore_errors=True)  # left by a killed worker
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(write_dir), max_to_keep=CHECKPOINTS_KEPT)

    def _averaged_copy(self, generator: keras.Model) -> keras.Model:
        average = self.architecture.build_generator()
        average.set_weights(generator.get_weights())
        return average

    @property
    def serving_generator(self) -> keras.Model:
        """What samples and exports use: the weights' moving average when there is one."""
        return self.generator_average if self.generator_average is not None else self.generator

    def _optimizer(self, lr: float) -> keras.optimizers.Optimizer:
        optimizer = keras.optimizers.Adam(lr, beta_1=self.architecture.default_beta_1)
        if keras.config.dtype_policy().name == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    # --- one step -------------------------------------------------------------------------------

    def generator_inputs(self, gray: tf.Tensor, hints: tf.Tensor):
        return [gray, hints] if self.architecture.takes_hints else gray

    def _replica_step(self, gray: tf.Tensor, rgb: tf.Tensor, hints: tf.Tensor) -> dict[str, tf.Tensor]:
        arch = self.architecture
        target = arch.target(rgb)
        adversarial = self.discriminator is not None
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            fake = self.generator(self.generator_inputs(gray, hints), training=True)
            fake_score = arch.discriminate(self.discriminator, gray, fake, training=True) if adversarial else None
            generator_losses = arch.generator_loss(fake, target, fake_score, global_batch_size=self.global_batch_size)
            # Under mixed precision the loss is scaled up, inside the tape, so float16 gradients don't underflow.
            generator_objective = self._scaled(self.generator_optimizer, generator_losses["total"])
            if adversarial:
                real_score = arch.discriminate(self.discriminator, gray, target, training=True)
                discriminator_losses = arch.discriminator_loss(
                    real_score,
                    fake_score,
                    global_batch_size=self.global_batch_size,
                    seed=tf.stack([self.step, tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)]),
                )
                discriminator_objective = self._scaled(self.discriminator_optimizer, discriminator_losses["total"])
        self._apply(generator_tape, generator_objective, self.generator, self.generator_optimizer)
        logged = {f"g/{name}": value for name, value in generator_losses.items()}
        if adversarial:
            self._apply(discriminator_tape, discriminator_objective, self.discriminator, self.discriminator_optimizer)
            logged.update({f"d/{name}": value for name, value in discriminator_losses.items()})
        return logged

    @staticmethod
    def _scaled(optimizer: keras.optimizers.Optimizer, loss: tf.Tensor) -> tf.Tensor:
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer.scale_loss(loss)
        return loss

    @staticmethod
    def _apply(tape: tf.GradientTape, objective: tf.Tensor, model: keras.Model, optimizer) -> None:
        """Gradient step; a LossScaleOptimizer unscales the gradients (and skips non-finite ones)."""
        gradients = tape.gradient(objective, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))

    @tf.function(autograph=False)  # no tensor-dependent Python control flow to convert
    def train_step(self, batch, signals: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        """One step on a (distributed) batch; returns the losses summed over replicas.

        ``signals`` (each worker's own ``[cpu seconds, checkpoint due]``) come back as ``"agreed"``,
        their mean over replicas: what every worker then decides on, so all decide alike.
        """
        per_replica = self.strategy.run(self._replica_step, args=batch)
        if self.generator_average is not None:
            self._update_average()
        reduced = {
            name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in per_replica.items()
        }
        if signals is not None:
            local = self.strategy.run(tf.identity, args=(signals,))
            reduced["agreed"] = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, local, axis=None)
        return reduced

    def _update_average(self) -> None:
        """An exponential moving average of the generator's weights (BatchNorm statistics included).

        A GAN's generator chases a moving target, so its latest weights wobble from step to step;
        their average gives steadier colours (Yazici et al., 2019).
        """
        for average, current in zip(self.generator_average.weights, self.generator.weights):
            average.assign(self.ema_decay * average + (1.0 - self.ema_decay) * tf.cast(current, average.dtype))

    # --- the loop -------------------------------------------------------------------------------

    def restore(self) -> bool:
        """Resume from the newest readable checkpoint, if any. Returns whether one was found.

        A checkpoint that cannot be read (a kill or a full disk mid-write) is reported and the one
        before it is tried; every worker reads the chief's, so all resume from the same one.
        """
        candidates = checkpoint_candidates(self.checkpoint_dir)
        unreadable = []
        for path in candidates:
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
            self._set_learning_rate(self.lr)  # the checkpoint holds the rate it was saved with
            tqdm.write(
                f"resumed from {path}: epoch {int(self.epoch) + 1}, "
                f"{int(self.step_in_epoch)} steps into it, {float(self.cpu_seconds) / 60:.1f} CPU-minutes so far"
            )
            return True
        if unreadable:
            raise CorruptCheckpoint(
                f"No checkpoint in {self.checkpoint_dir} can be read ({', '.join(Path(p).name for p in unreadable)}); "
                "move them away to start over."
            )
        return False

    def _set_learning_rate(self, lr: float) -> None:
        for optimizer in (self.generator_optimizer, getattr(self, "discriminator_optimizer", None)):
            if optimizer is not None:
                optimizer.learning_rate.assign(lr)

    def check_global_batch(self) -> None:
        """Step counts are in global batches: a run resumes only with the global batch it began with."""
        path = self.config.run_dir / DISTRIBUTION_FILE
        # Runs from before this file trained on one replica.
        began_with = json.loads(path.read_text())["global_batch_size"] if path.is_file() else self.config.batch_size
        if began_with != self.global_batch_size and checkpoint_candidates(self.checkpoint_dir):
            raise ConfigMismatch(
                f"{self.config.run_dir} was trained with a global batch of {began_with} images; this strategy gives "
                f"{self.config.batch_size} on each of {self.strategy.num_replicas_in_sync} replicas = {self.global_batch_size}. "
                "Resume it on as many replicas, or use another --run-dir."
            )
        if self.is_chief and not path.is_file():
            record = {"global_batch_size": self.global_batch_size, "replicas": self.strategy.num_replicas_in_sync}
            path.write_text(json.dumps(record, indent=2) + "\n")

    def save(self) -> None:
        """Checkpoint, on every worker as TensorFlow requires; only the chief's copy is kept."""
        self.manager.save(checkpoint_number=self.step)
        if not self.is_chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)

    def fit(self) -> TrainResult:
        """Train until ``config.epochs`` or the CPU budget; checkpoint every epoch and every few minutes."""
        try:
            return self._fit()
        except distribution.PEER_LOST_ERRORS as error:
            if not distribution.is_multi_worker(self.strategy):
                raise
            raise distribution.WorkerLost(
                f"another worker stopped ({type(error).__name__}: {str(error).splitlines()[0][:200]}). "
                f"Restart every worker with the same command: they resume from the last checkpoint in {self.checkpoint_dir}."
            ) from None

    def _fit(self) -> TrainResult:
        config = self.config
        sampler = data.EpochSampler(config.data, crops_per_photo=config.crops_per_photo, seed=config.seed)
        steps_per_epoch = sampler.files_per_epoch // self.global_batch_size  # batches drop their remainder
        if steps_per_epoch == 0:
            raise ValueError(
                f"The training split has fewer images than one batch. Received: batch_size={config.batch_size}"
                f" on each of {self.strategy.num_replicas_in_sync} replicas"
            )
        chief = self.is_chief
        writer = tf.summary.create_file_writer(str(config.run_dir / "logs")) if chief else tf.summary.create_noop_writer()
        holdout = data.holdout_split(config.data)
        sample_gray, sample_rgb = data.holdout_pairs(config.data, SAMPLE_COUNT, holdout) if chief else (None, None)
        stopped_by_budget = False
        last_save = time.monotonic()
        cpu_mark = time.process_time()
        next_validation = self._next_validation()
        self._last_validated_step = -1
        while int(self.epoch) < config.epochs and not stopped_by_budget:
            epoch = int(self.epoch)
            skip = int(self.step_in_epoch)
            files = sampler.epoch_files(epoch)
            batches = iter(self.distributed_batches(files, epoch=epoch, first_step=skip, steps=steps_per_epoch))
            progress = tqdm(
                total=steps_per_epoch * self.global_batch_size,
                initial=skip * self.global_batch_size,
                desc=f"epoch {epoch + 1}/{config.epochs}",
                unit="img",
                dynamic_ncols=True,
                disable=not chief,
            )
            while (batch := self._next_batch(batches, files)) is not None:
                if self._over_budget():
                    stopped_by_budget = True
                    break
                now = time.process_time()
                save_due = time.monotonic() - last_save > config.checkpoint_every_min * 60
                signals = tf.constant([now - cpu_mark, float(save_due)], tf.float32)
                cpu_mark = now
                losses = {name: value for name, value in self.train_step(batch, signals).items()}
                cpu_spent, save_agreed = (float(value) for value in losses.pop("agreed"))
                losses = {name: float(value) for name, value in losses.items()}
                self._check_finite(losses)
                self.step.assign_add(1)
                self.step_in_epoch.assign_add(1)
                self.cpu_seconds.assign_add(cpu_spent)
                progress.update(self.global_batch_size)
                progress.set_postfix({name: f"{value:.4f}" for name, value in losses.items() if name.endswith("total")})
                if chief:
                    self._log_scalars(writer, losses, progress)
                if save_agreed > 0:  # some worker's clock says it is time: all save together
                    self.save()
                    last_save = time.monotonic()
                if float(self.cpu_seconds) >= next_validation:
                    if chief:
                        self.validate(holdout, writer)
                    cpu_mark = time.process_time()  # validation is not training: it is left out of the budget
                    next_validation = self._next_validation()
            progress.close()
            if not stopped_by_budget:
                self.epoch.assign_add(1)
                self.step_in_epoch.assign(0)
            self.save()
            last_save = time.monotonic()
            if chief and (stopped_by_budget or int(self.epoch) % config.sample_every == 0 or int(self.epoch) == config.epochs):
                self.save_samples(sample_gray, sample_rgb)
        if chief and self._last_validated_step != int(self.step):
            self.validate(holdout, writer)
        writer.flush()
        return self.result(stopped_by_budget=stopped_by_budget)

    def distributed_batches(self, files: list[tuple[str, str]], *, epoch: int, first_step: int, steps: int):
        """The epoch's global batches from ``first_step`` on, each worker reading only its own share."""
        global_batch = self.global_batch_size

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

    def _next_validation(self) -> float:
        every = self.config.validate_every_min * 60
        return (math.floor(float(self.cpu_seconds) / every) + 1) * every

    def predict_rgb(self, gray: tf.Tensor, hints: tf.Tensor | None = None) -> tf.Tensor:
        """What an export of the weights as they stand would output."""
        hints = tf.zeros(tf.concat([tf.shape(gray)[:3], [4]], 0)) if hints is None else hints
        output = self.serving_generator(self.generator_inputs(gray, hints), training=False)
        return self.architecture.to_rgb(gray, output)

    def validate(self, split: str, writer) -> dict[str, float]:
        """Score the served weights on ``split`` as the service would; append a row to ``validation.csv``."""
        scored = evaluate.score(
            evaluate.in_memory_colorizer(self.predict_rgb, self.architecture.native_size),
            self.config.data,
            split=split,
            per_photo=VALIDATION_PHOTO_CROPS,
            label=f"{split} at step {int(self.step)}",
            keep=0,
        )
        self._last_validated_step = int(self.step)
        row = {"step": int(self.step), "cpu_minutes": round(float(self.cpu_seconds) / 60, 2), **scored.metrics}
        path = self.config.run_dir / VALIDATION_FILE
        with path.open("a", newline="") as file:
            table = csv.DictWriter(file, fieldnames=list(row))
            if file.tell() == 0:
                table.writeheader()
            table.writerow(row)
        with writer.as_default(step=int(self.step)):
            for name, value in scored.metrics.items():
                tf.summary.scalar(f"{split}/{name}", value)
        tqdm.write(
            f"{split} at {row['cpu_minutes']:.1f} CPU-min: ΔE2000 {scored.metrics['ciede2000']:.2f}, "
            f"PSNR {scored.metrics['psnr']:.2f}, colourfulness/truth {scored.metrics['colorfulness_ratio']:.2f}"
        )
        return scored.metrics

    def result(self, *, stopped_by_budget: bool = False) -> TrainResult:
        """Where the run stands now, from its checkpointed counters."""
        return TrainResult(
            epochs_completed=int(self.epoch),
            steps=int(self.step),
            cpu_minutes=float(self.cpu_seconds) / 60,
            stopped_by_budget=stopped_by_budget,
        )

    def _over_budget(self) -> bool:
        budget = self.config.time_budget_min
        return budget is not None and float(self.cpu_seconds) >= budget * 60

    def _check_finite(self, losses: dict[str, float]) -> None:
        bad = [name for name, value in losses.items() if not math.isfinite(value)]
        if bad:
            raise TrainingDiverged(
                f"Loss {', '.join(bad)} is not finite at step {int(self.step) + 1} (epoch {int(self.epoch) + 1}); "
                f"stopped without saving. The last good checkpoint is in {self.checkpoint_dir}: "
                "resume with a lower --lr."
            )

    def _log_scalars(self, writer, losses: dict[str, float], progress: tqdm) -> None:
        with writer.as_default(step=int(self.step)):
            for name, value in losses.items():
                tf.summary.scalar(name, value)
            rate = progress.format_dict.get("rate")
            if rate:
                tf.summary.scalar("images_per_second", rate)

    def save_samples(self, gray: tf.Tensor, rgb: tf.Tensor) -> Path:
        """A PNG grid of validation photos: gray | ours | truth."""
        predicted = self.predict_rgb(gray).numpy()
        rows = [
            [samples.to_image(g), samples.to_image(p), samples.to_image(t)]
            for g, p, t in zip(gray.numpy(), predicted, rgb.numpy())
        ]
        path = self.config.run_dir / "samples" / f"epoch_{int(self.epoch):04d}_step_{int(self.step):06d}.png"
        return samples.save_grid(rows, path, labels=("gray", self.architecture.name, "truth"))


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


def checkpoint_candidates(directory: Path) -> list[str]:
    """The checkpoints in ``directory``, newest (highest step) first, whatever its index file says."""
    found = [CHECKPOINT_INDEX.fullmatch(path.name) for path in Path(directory).glob("ckpt-*.index")]
    steps = sorted((int(match.group(1)) for match in found if match), reverse=True)
    return [str(Path(directory) / f"ckpt-{step}") for step in steps]

