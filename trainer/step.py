"""The GAN's train step: its networks, their optimizers and losses, and the generator's weight average.

What a Keras GAN example keeps in its ``keras.Model`` subclass, without ``fit``: trainer/train.py's
loop calls ``train_step`` (its module docstring says why the loop is our own).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from colorizer_core import contract
from colorizer_trainer.gans import Architecture


class GANStep:
    """The generator, the discriminator (None without an adversarial term), an Adam optimizer for
    each, and the generator's exponential moving average (None when ``ema_decay`` is 0).

    ``step`` is the run's step count: it seeds the discriminator's label noise, so a resumed run
    draws the noise an uninterrupted one would have.
    """

    def __init__(
        self,
        architecture: Architecture,
        strategy: tf.distribute.Strategy,
        *,
        learning_rate: float,
        ema_decay: float,
        global_batch_size: int,
        step: tf.Variable,
    ) -> None:
        self.architecture = architecture
        self.strategy = strategy
        self.ema_decay = ema_decay
        self.global_batch_size = global_batch_size
        self.step = step
        with strategy.scope():
            self.generator = architecture.build_generator()
            self.discriminator = architecture.build_discriminator()
            self.generator_optimizer = self._optimizer(learning_rate, self.generator)
            self.discriminator_optimizer = (
                self._optimizer(learning_rate, self.discriminator) if self.discriminator is not None else None
            )
            self.generator_average = self._averaged_copy(self.generator) if ema_decay else None

    def _optimizer(self, learning_rate: float, model: keras.Model) -> keras.optimizers.Optimizer:
        optimizer = keras.optimizers.Adam(learning_rate, beta_1=self.architecture.default_beta_1)
        if keras.config.dtype_policy().name == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        # Built now, not at the first step, so a checkpoint restores into it immediately.
        optimizer.build(model.trainable_variables)
        return optimizer

    def _averaged_copy(self, generator: keras.Model) -> keras.Model:
        average = self.architecture.build_generator()
        average.set_weights(generator.get_weights())
        return average

    def trackables(self) -> dict[str, object]:
        """What a checkpoint keeps of the step, by the names checkpoints have always used."""
        tracked = dict(generator=self.generator, generator_optimizer=self.generator_optimizer)
        if self.generator_average is not None:
            tracked["generator_average"] = self.generator_average
        if self.discriminator is not None:
            tracked.update(discriminator=self.discriminator, discriminator_optimizer=self.discriminator_optimizer)
        return tracked

    def set_learning_rate(self, learning_rate: float) -> None:
        """A restored optimizer holds the rate it was saved with; a resumed run may ask for another."""
        for optimizer in (self.generator_optimizer, self.discriminator_optimizer):
            if optimizer is not None:
                optimizer.learning_rate.assign(learning_rate)

    @property
    def serving_generator(self) -> keras.Model:
        """What samples and exports use: the weights' moving average when there is one."""
        return self.generator_average if self.generator_average is not None else self.generator

    def generator_inputs(self, gray: tf.Tensor, hints: tf.Tensor | None = None):
        """The generator's inputs for ``gray``: with ``hints`` (none given: an empty hint map) if it takes them."""
        if not self.architecture.takes_hints:
            return gray
        return [gray, tf.zeros(tf.concat([tf.shape(gray)[:3], [contract.HINT_CHANNELS]], 0)) if hints is None else hints]

    def predict_rgb(self, gray: tf.Tensor, hints: tf.Tensor | None = None) -> tf.Tensor:
        """What an export of the weights as they stand would output."""
        output = self.serving_generator(self.generator_inputs(gray, hints), training=False)
        return self.architecture.to_rgb(gray, output, hints=hints)

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

    def _replica_step(self, gray: tf.Tensor, rgb: tf.Tensor, hints: tf.Tensor) -> dict[str, tf.Tensor]:
        arch = self.architecture
        target = arch.target(rgb)
        adversarial = self.discriminator is not None
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            fake = self.generator(self.generator_inputs(gray, hints), training=True)
            fake_score = (
                arch.discriminate(self.discriminator, gray, arch.prediction(fake), training=True) if adversarial else None
            )
            generator_losses = arch.generator_loss(fake, target, fake_score, global_batch_size=self.global_batch_size)
            # Under mixed precision the loss is scaled up, inside the tape, so float16 gradients don't underflow.
            generator_objective = _scaled(self.generator_optimizer, generator_losses["total"])
            if adversarial:
                real_score = arch.discriminate(self.discriminator, gray, target, training=True)
                discriminator_losses = arch.discriminator_loss(
                    real_score,
                    fake_score,
                    global_batch_size=self.global_batch_size,
                    seed=tf.stack([self.step, tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)]),
                )
                discriminator_objective = _scaled(self.discriminator_optimizer, discriminator_losses["total"])
        _apply(generator_tape, generator_objective, self.generator, self.generator_optimizer)
        logged = {f"g/{name}": value for name, value in generator_losses.items()}
        if adversarial:
            _apply(discriminator_tape, discriminator_objective, self.discriminator, self.discriminator_optimizer)
            logged.update({f"d/{name}": value for name, value in discriminator_losses.items()})
        return logged

    def _update_average(self) -> None:
        """An exponential moving average of the generator's weights (BatchNorm statistics included).

        A GAN's generator chases a moving target, so its latest weights wobble from step to step;
        their average gives steadier colours (Yazici et al., 2019).
        """
        for average, current in zip(self.generator_average.weights, self.generator.weights):
            average.assign(self.ema_decay * average + (1.0 - self.ema_decay) * tf.cast(current, average.dtype))


def _scaled(optimizer: keras.optimizers.Optimizer, loss: tf.Tensor) -> tf.Tensor:
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss


def _apply(tape: tf.GradientTape, objective: tf.Tensor, model: keras.Model, optimizer) -> None:
    """Gradient step; a LossScaleOptimizer unscales the gradients (and skips non-finite ones)."""
    gradients = tape.gradient(objective, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
