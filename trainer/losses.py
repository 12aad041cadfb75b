"""Losses. Each returns its parts as a dict, so every term is logged, with ``total`` the one optimised.

Per-example losses are averaged over the *global* batch (``tf.nn.compute_average_loss``) so that
gradients summed across replicas by a distribution strategy come out right.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import tensorflow as tf

from colorizer_trainer import color

Losses = dict[str, tf.Tensor]


def _per_example_mean(values: tf.Tensor) -> tf.Tensor:
    """Average everything but the batch axis: ``(B, ...)`` -> ``(B,)``."""
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=-1)


def _bce(labels: tf.Tensor, predictions: tf.Tensor, *, from_logits: bool) -> tf.Tensor:
    if from_logits:
        values = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=predictions)
    else:
        values = keras.ops.binary_crossentropy(labels, predictions)
    return _per_example_mean(values)


def _average(per_example: tf.Tensor, global_batch_size: int) -> tf.Tensor:
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)


# --- the seed's: the generator learns from MSE alone; the discriminator never reaches it --------


def seed_generator_loss(fake_rgb, real_rgb, fake_score, *, global_batch_size: int) -> Losses:
    mse = _average(_per_example_mean(tf.square(fake_rgb - real_rgb)), global_batch_size)
    return {"total": mse, "mse": mse}


def _softened_real_labels(score: tf.Tensor, softening: float, seed: tf.Tensor) -> tf.Tensor:
    """Labels for real samples drawn from [1 - softening, 1], so the discriminator is never sure."""
    return 1.0 - tf.random.stateless_uniform(tf.shape(score), seed, maxval=softening, dtype=score.dtype)


def seed_discriminator_loss(
    real_score, fake_score, *, global_batch_size: int, label_softening: float, seed: tf.Tensor
) -> Losses:
    """BCE(real -> 1) + BCE(fake -> 0), real labels softened by up to ``label_softening``."""
    real_labels = _softened_real_labels(real_score, label_softening, seed)
    real = _average(_bce(real_labels, real_score, from_logits=False), global_batch_size)
    fake = _average(_bce(tf.zeros_like(fake_score), fake_score, from_logits=False), global_batch_size)
    return {"total": real + fake, "real": real, "fake": fake}


# --- ours: chroma as a distribution over (a, b) bins, or plain L1; an optional adversarial term ---


def chroma_cross_entropy(logits, real_chroma, bins, *, stride: int, global_batch_size: int) -> Losses:
    """Cross-entropy of the predicted bin distribution ``(B, H/stride, W/stride, Q)`` against the
    true chroma ``(B, H, W, 2)``, averaged over each ``stride`` square and soft-encoded over nearby bins.

    A distribution keeps every plausible colour of an ambiguous object instead of averaging them to
    gray-brown, and its decoding can be made bolder or safer after training (Zhang et al. 2016).
    """
    coarse = tf.nn.avg_pool2d(tf.cast(real_chroma, tf.float32), stride, stride, "VALID")
    targets = color.soft_encode(coarse, bins)
    values = -tf.reduce_sum(targets * tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1), axis=-1)
    cross_entropy = _average(_per_example_mean(values), global_batch_size)
    return {"total": cross_entropy, "cross_entropy": cross_entropy}


def chroma_l1(fake_chroma, real_chroma, *, global_batch_size: int, weight: float) -> Losses:
    l1 = _average(_per_example_mean(tf.abs(fake_chroma - real_chroma)), global_batch_size)
    return {"total": weight * l1, "l1": l1}


REBALANCE_CELL = 10.0  # side, in Lab units, of the (a, b) cells whose frequencies the weights come from
REBALANCE_MIX = 0.5  # Zhang et al.'s lambda: the batch's frequencies mixed half-and-half with uniform
_CELLS_PER_SIDE = 2 * math.ceil(color.AB_SCALE / REBALANCE_CELL) + 1


def rarity_weights(real_chroma: tf.Tensor) -> tf.Tensor:
    """Each pixel's weight ``(B, H, W)``: the inverse of how common its true (a, b) cell is in the batch,
    mixed with uniform over the cells the batch fills, so the weights average 1 over its pixels."""
    cell = tf.cast(tf.round(tf.cast(real_chroma, tf.float32) * (color.AB_SCALE / REBALANCE_CELL)), tf.int32)
    index = (cell[..., 0] + _CELLS_PER_SIDE // 2) * _CELLS_PER_SIDE + cell[..., 1] + _CELLS_PER_SIDE // 2
    counts = tf.cast(tf.math.bincount(index, minlength=_CELLS_PER_SIDE**2), tf.float32)
    frequency = counts / tf.reduce_sum(counts)
    filled = tf.reduce_sum(tf.cast(counts > 0, tf.float32))
    weights = 1.0 / ((1.0 - REBALANCE_MIX) * frequency + REBALANCE_MIX / filled)
    weights /= tf.reduce_sum(frequency * weights)  # 1 on average over the batch's pixels
    return tf.stop_gradient(tf.gather(weights, index))


def chroma_l1_rebalanced(fake_chroma, real_chroma, *, global_batch_size: int, weight: float) -> Losses:
    """L1 with each pixel weighed by how rare its true colour is in the batch (Zhang et al. 2016's class
    rebalancing, for a regression): a batch's few vivid pixels count for more than its many dull ones, so
    the mean the model learns is drawn less towards gray."""
    error = tf.reduce_mean(tf.abs(tf.cast(fake_chroma, tf.float32) - tf.cast(real_chroma, tf.float32)), axis=-1)
    l1 = _average(_per_example_mean(rarity_weights(real_chroma) * error), global_batch_size)
    return {"total": weight * l1, "l1": l1}


def chroma_ciede2000(fake_chroma, real_chroma, *, global_batch_size: int, weight: float) -> Losses:
    """CIEDE2000 between the predicted and the true colour of each pixel, the lightness being the same.

    The measure the model is judged by: unlike L1 it counts a red-green error on a near-gray colour
    about 1.5 times a blue-yellow one, and the same error less on a vivid colour than on a dull one.
    Divided by ``AB_SCALE``, so a ``weight`` means about what it means for L1.
    """
    # The same lightness for both (black; which one does not change CIEDE2000 when it is equal).
    fake_lab, real_lab = (
        color.lab_from_gray_and_ab(tf.zeros_like(chroma[..., :1]), chroma)
        for chroma in (tf.cast(fake_chroma, tf.float32), tf.cast(real_chroma, tf.float32))
    )
    ciede2000 = _average(_per_example_mean(color.ciede2000(fake_lab, real_lab)), global_batch_size)
    return {"total": weight * ciede2000 / color.AB_SCALE, "ciede2000": ciede2000}


CHROMA_LOSSES = {"l1": chroma_l1, "l1-rebalanced": chroma_l1_rebalanced, "ciede2000": chroma_ciede2000}


def member_chroma_losses(name: str, members: int) -> list[Callable[..., Losses]]:
    """Each member's chroma loss (``CHROMA_LOSSES``); ``l1-mixed`` alternates plain and rebalanced L1, so
    half the members lean to the batch's common colours and half to its rare ones: their average weighs
    both, and where they disagree the photo's colour is in doubt."""
    if name == "l1-mixed":
        return [(chroma_l1, chroma_l1_rebalanced)[index % 2] for index in range(members)]
    return [CHROMA_LOSSES[name]] * members


def with_adversarial(parts: Losses, fake_logits, *, global_batch_size: int, weight: float) -> Losses:
    """Add the non-saturating adversarial term, ``weight`` times, to a generator's losses."""
    adversarial = _average(_bce(tf.ones_like(fake_logits), fake_logits, from_logits=True), global_batch_size)
    return {**parts, "total": parts["total"] + weight * adversarial, "adversarial": adversarial}


def discriminator_loss(
    real_logits, fake_logits, *, global_batch_size: int, label_softening: float, seed: tf.Tensor
) -> Losses:
    del seed  # ours smooths by a constant: one-sided label smoothing (Salimans et al., 2016)
    real_labels = tf.fill(tf.shape(real_logits), tf.cast(1.0 - label_softening, real_logits.dtype))
    real = _average(_bce(real_labels, real_logits, from_logits=True), global_batch_size)
    fake = _average(_bce(tf.zeros_like(fake_logits), fake_logits, from_logits=True), global_batch_size)
    return {"total": 0.5 * (real + fake), "real": real, "fake": fake}
