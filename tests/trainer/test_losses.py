"""Losses: the seed's discriminator never shapes its generator; ours does."""

from __future__ import annotations

import tensorflow as tf

from trainer import losses

BATCH = 2


def _gradient_wrt_score(loss_fn, **kwargs) -> tf.Tensor | None:
    fake, real = tf.fill((BATCH, 4, 4, 2), 0.2), tf.fill((BATCH, 4, 4, 2), 0.5)
    score = tf.Variable(tf.fill((BATCH, 2, 2, 1), 0.3))
    with tf.GradientTape() as tape:
        total = loss_fn(fake, real, score, global_batch_size=BATCH, **kwargs)["total"]
    return tape.gradient(total, score)


def test_the_seeds_generator_loss_ignores_the_discriminator():
    assert _gradient_wrt_score(losses.seed_generator_loss) is None


def test_our_generator_loss_is_pushed_by_the_discriminator():
    gradient = _gradient_wrt_score(losses.generator_loss, l1_weight=100.0)
    assert gradient is not None and float(tf.reduce_sum(tf.abs(gradient))) > 0


def test_generator_loss_reports_its_parts_and_weighs_the_l1():
    fake, real, logits = tf.zeros((BATCH, 4, 4, 2)), tf.fill((BATCH, 4, 4, 2), 0.5), tf.zeros((BATCH, 2, 2, 1))
    parts = losses.generator_loss(fake, real, logits, global_batch_size=BATCH, l1_weight=10.0)
    assert float(parts["l1"]) == 0.5
    assert abs(float(parts["total"]) - (10.0 * 0.5 + float(parts["adversarial"]))) < 1e-6


def test_the_seeds_real_labels_are_softened_by_at_most_the_softening():
    seed = tf.constant([1, 2], tf.int64)
    certain = tf.ones((64, 1))  # a discriminator sure every real photo is real
    parts = losses.seed_discriminator_loss(certain * 0.999, certain * 0.001, global_batch_size=64, label_softening=0.1, seed=seed)
    # With labels in [0.9, 1], BCE on a 0.999 score lies between that of label 1 and label 0.9.
    assert 0.001 < float(parts["real"]) < 0.7
