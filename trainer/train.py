"""The training loop: distributed train step, resumable checkpoints, progress, validation, samples.

Rerunning the same command resumes from the last checkpoint, even mid-epoch: each epoch's files
and shuffle are seeded by its number, so the batches already trained on are skipped exactly.
Every ``validate_every_min`` CPU-minutes the weight average is scored on the validation split
(``validation.csv`` in the run folder: the learning curve every choice is made on).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf
from tqdm import tqdm

from trainer import data, evaluate, samples
from trainer.architectures import Architecture, get_architecture
from trainer.config import TrainConfig

SAMPLE_COUNT = 8  # validation photos in each sample grid
VALIDATION_PHOTO_CROPS = 2  # files of each source photo scored at each validation
VALIDATION_FILE = "validation.csv"
CHECKPOINTS_KEPT = 3


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class ConfigMismatch(ValueError):
    """The run folder holds a run with a different configuration."""


@dataclass
class TrainResult:
    epochs_completed: int
    steps: int
    cpu_minutes: float
    stopped_by_budget: bool


def choose_strategy() -> tf.distribute.Strategy:
    """TensorFlow's own distribution: several machines from TF_CONFIG, else all local GPUs."""
    if "TF_CONFIG" in os.environ and json.loads(os.environ["TF_CONFIG"]).get("cluster"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def configure_runtime(config: TrainConfig) -> None:
    """Threads and precision; must run before any model is built."""
    if config.threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(config.threads)
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    use_mixed = config.mixed_precision == "on" or (config.mixed_precision == "auto" and has_gpu)
    keras.config.set_dtype_policy("mixed_float16" if use_mixed else "float32")
    keras.utils.set_random_seed(config.seed)


class GANTrainer:
    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.architecture: Architecture = get_architecture(
            config.arch,
            head=config.head,
            l1_weight=config.l1_weight,
            adversarial_weight=config.adversarial_weight,
            label_softening=config.label_softening,
        )
        self.strategy = choose_strategy()
        self.global_batch_size = config.batch_size * self.strategy.num_replicas_in_sync
        lr = config.lr if config.lr is not None else self.architecture.default_lr
        with self.strategy.scope():
            self.generator = self.architecture.build_generator()
            self.discriminator = self.architecture.build_discriminator()
            self.generator_optimizer = self._optimizer(lr)
            # Built now, not at the first step, so a checkpoint restores into them immediately.
            self.generator_optimizer.build(self.generator.trainable_variables)
            if self.discriminator is not None:
                self.discriminator_optimizer = self._optimizer(lr)
                self.discriminator_optimizer.build(self.discriminator.trainable_variables)
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.cpu_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="cpu_seconds")
            self.ema_decay = config.ema_decay if config.ema_decay is not None else self.architecture.default_ema_decay
            self.generator_average = self._averaged_copy(self.generator) if self.ema_decay else None
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
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(config.run_dir / "checkpoints"), max_to_keep=CHECKPOINTS_KEPT
        )

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
    def train_step(self, batch) -> dict[str, tf.Tensor]:
        per_replica = self.strategy.run(self._replica_step, args=batch)
        if self.generator_average is not None:
            self._update_average()
        return {
            name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in per_replica.items()
        }

    def _update_average(self) -> None:
        """An exponential moving average of the generator's weights (BatchNorm statistics included).

        A GAN's generator chases a moving target, so its latest weights wobble from step to step;
        their average gives steadier colours (Yazici et al., 2019).
        """
        for average, current in zip(self.generator_average.weights, self.generator.weights):
            average.assign(self.ema_decay * average + (1.0 - self.ema_decay) * tf.cast(current, average.dtype))

    # --- the loop -------------------------------------------------------------------------------

    def restore(self) -> bool:
        """Resume from the newest checkpoint, if any. Returns whether one was found."""
        if self.manager.latest_checkpoint is None:
            return False
        try:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
        except AssertionError as error:
            raise ConfigMismatch(
                f"{self.manager.latest_checkpoint} does not hold everything this configuration trains "
                f"(was it made with other options?): {str(error).splitlines()[0]}"
            ) from None
        tqdm.write(
            f"resumed from {self.manager.latest_checkpoint}: epoch {int(self.epoch) + 1}, "
            f"{int(self.step_in_epoch)} steps into it, {float(self.cpu_seconds) / 60:.1f} CPU-minutes so far"
        )
        return True

    def fit(self) -> TrainResult:
        config = self.config
        sampler = data.EpochSampler(config.data, crops_per_photo=config.crops_per_photo, seed=config.seed)
        steps_per_epoch = sampler.files_per_epoch // self.global_batch_size  # batches drop their remainder
        if steps_per_epoch == 0:
            raise ValueError(
                f"The training split has fewer images than one batch. Received: batch_size={config.batch_size}"
                f" on each of {self.strategy.num_replicas_in_sync} replicas"
            )
        writer = tf.summary.create_file_writer(str(config.run_dir / "logs"))
        holdout = data.holdout_split(config.data)
        sample_gray, sample_rgb = data.holdout_pairs(config.data, SAMPLE_COUNT, holdout)
        stopped_by_budget = False
        last_save = time.monotonic()
        cpu_mark = time.process_time()
        next_validation = self._next_validation()
        self._last_validated_step = -1
        while int(self.epoch) < config.epochs and not stopped_by_budget:
            epoch = int(self.epoch)
            skip = int(self.step_in_epoch)
            batches = data.training_batches(
                sampler.epoch_files(epoch),
                batch_size=self.global_batch_size,
                seed=(config.seed, epoch),
                flips=self.architecture.augment_flips,
                crop=self.architecture.train_crop,
                hints=self.architecture.takes_hints,
            ).skip(skip)
            batches = self.strategy.experimental_distribute_dataset(batches)
            progress = tqdm(
                total=steps_per_epoch * self.global_batch_size,
                initial=skip * self.global_batch_size,
                desc=f"epoch {epoch + 1}/{config.epochs}",
                unit="img",
                dynamic_ncols=True,
            )
            for batch in batches:
                if self._over_budget():
                    stopped_by_budget = True
                    break
                losses = {name: float(value) for name, value in self.train_step(batch).items()}
                self._check_finite(losses)
                self.step.assign_add(1)
                self.step_in_epoch.assign_add(1)
                now = time.process_time()
                self.cpu_seconds.assign_add(now - cpu_mark)
                cpu_mark = now
                progress.update(self.global_batch_size)
                progress.set_postfix({name: f"{value:.4f}" for name, value in losses.items() if name.endswith("total")})
                self._log_scalars(writer, losses, progress)
                if time.monotonic() - last_save > config.checkpoint_every_min * 60:
                    self.manager.save(checkpoint_number=self.step)
                    last_save = time.monotonic()
                if float(self.cpu_seconds) >= next_validation:
                    self.validate(holdout, writer)
                    cpu_mark = time.process_time()  # validation is not training: it is left out of the budget
                    next_validation = self._next_validation()
            progress.close()
            if not stopped_by_budget:
                self.epoch.assign_add(1)
                self.step_in_epoch.assign(0)
            self.manager.save(checkpoint_number=self.step)
            last_save = time.monotonic()
            if stopped_by_budget or int(self.epoch) % config.sample_every == 0 or int(self.epoch) == config.epochs:
                self.save_samples(sample_gray, sample_rgb)
        if self._last_validated_step != int(self.step):
            self.validate(holdout, writer)
        writer.flush()
        return self.result(stopped_by_budget=stopped_by_budget)

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
                f"stopped without saving. The last good checkpoint is in {self.manager.directory}: "
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
    config.save(saved_path)
    configure_runtime(config)
    trainer = GANTrainer(config)
    trainer.restore()
    return trainer

