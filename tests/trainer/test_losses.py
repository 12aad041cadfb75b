"""Losses: the seed's discriminator never shapes its generator; ours does; each of our members learns on its own;
rebalanced L1 counts rare colours for more."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from colorizer_trainer import color, losses
from colorizer_trainer.gans import get_architecture

BATCH = 2


def _gradient_wrt_score(loss_fn, **kwargs) -> tf.Tensor | None:
    fake, real = tf.fill((BATCH, 4, 4, 2), 0.2), tf.fill((BATCH, 4, 4, 2), 0.5)
    score = tf.Variable(tf.fill((BATCH, 2, 2, 1), 0.3))
    with tf.GradientTape() as tape:
        total = loss_fn(fake, real, score, global_batch_size=BATCH, **kwargs)["total"]
    return tape.gradient(total, score)


def test_the_seeds_generator_loss_ignores_the_discriminator():
    assert _gradient_wrt_score(losses.seed_generator_loss) is None


def _l1_with_adversarial(fake, real, score, *, global_batch_size, weight=1.0):
    parts = losses.chroma_l1(fake, real, global_batch_size=global_batch_size, weight=100.0)
    return losses.with_adversarial(parts, score, global_batch_size=global_batch_size, weight=weight)


def test_our_generator_loss_is_pushed_by_the_discriminator():
    gradient = _gradient_wrt_score(_l1_with_adversarial)
    assert gradient is not None and float(tf.reduce_sum(tf.abs(gradient))) > 0


def test_the_adversarial_term_counts_by_its_weight():
    fake, real, logits = tf.zeros((BATCH, 4, 4, 2)), tf.fill((BATCH, 4, 4, 2), 0.5), tf.zeros((BATCH, 2, 2, 1))
    parts = _l1_with_adversarial(fake, real, logits, global_batch_size=BATCH, weight=0.25)
    assert float(parts["l1"]) == 0.5
    assert float(parts["total"]) == pytest.approx(100.0 * 0.5 + 0.25 * float(parts["adversarial"]))
    assert float(parts["adversarial"]) == pytest.approx(np.log(2.0))  # a discriminator that cannot tell


def _ciede2000_loss(fake_ab, real_ab) -> float:
    fake, real = (tf.fill((BATCH, 4, 4, 2), 0.0) + tf.constant(ab) / color.AB_SCALE for ab in (fake_ab, real_ab))
    return float(losses.chroma_ciede2000(fake, real, global_batch_size=BATCH, weight=1.0)["ciede2000"])


def test_the_ciede2000_loss_is_zero_only_for_the_true_colour():
    assert _ciede2000_loss([10.0, -5.0], [10.0, -5.0]) == pytest.approx(0.0, abs=1e-3)
    assert _ciede2000_loss([12.0, -5.0], [10.0, -5.0]) > 1.0


def test_the_ciede2000_loss_counts_a_red_green_error_on_a_dull_colour_more_than_l1_does():
    red_green, blue_yellow = _ciede2000_loss([3.0, 0.0], [0.0, 0.0]), _ciede2000_loss([0.0, 3.0], [0.0, 0.0])
    assert red_green == pytest.approx(1.5 * blue_yellow, rel=0.05)


def test_the_ciede2000_loss_counts_an_error_on_a_vivid_colour_less_than_on_a_dull_one():
    assert _ciede2000_loss([0.0, 85.0], [0.0, 80.0]) < 0.5 * _ciede2000_loss([0.0, 5.0], [0.0, 0.0])


def _mostly_dull_batch() -> tf.Tensor:
    """Chroma of a batch whose pixels are near gray but for one vivid one in each photo."""
    chroma = np.full((BATCH, 4, 4, 2), 0.02, np.float32)
    chroma[:, 0, 0] = [0.6, -0.4]
    return tf.constant(chroma)


def test_rarity_weights_average_one_and_favour_the_rare_colour():
    weights = losses.rarity_weights(_mostly_dull_batch()).numpy()
    assert weights.mean() == pytest.approx(1.0)
    assert weights[0, 0, 0] > 2 * weights[0, 1, 1]  # two cells filled: the uniform half bounds the ratio


def test_the_rebalanced_l1_is_plain_l1_when_every_pixel_has_the_same_colour():
    real, fake = tf.fill((BATCH, 4, 4, 2), 0.3), tf.fill((BATCH, 4, 4, 2), 0.1)
    rebalanced = losses.chroma_l1_rebalanced(fake, real, global_batch_size=BATCH, weight=100.0)
    plain = losses.chroma_l1(fake, real, global_batch_size=BATCH, weight=100.0)
    assert float(rebalanced["total"]) == pytest.approx(float(plain["total"]))


def test_the_rebalanced_l1_counts_missing_a_rare_vivid_colour_more_than_plain_l1_does():
    real = _mostly_dull_batch()
    dull_everywhere = tf.fill(real.shape, 0.02)
    rebalanced = float(losses.chroma_l1_rebalanced(dull_everywhere, real, global_batch_size=BATCH, weight=1.0)["l1"])
    plain = float(losses.chroma_l1(dull_everywhere, real, global_batch_size=BATCH, weight=1.0)["l1"])
    assert rebalanced > 2 * plain


def _cross_entropy(logits, chroma):
    return float(
        losses.chroma_cross_entropy(logits, chroma, color.gamut_ab_bins(), stride=4, global_batch_size=BATCH)["total"]
    )


def test_cross_entropy_is_lowest_for_logits_that_put_the_true_colour_first():
    bins = color.gamut_ab_bins()
    true_chroma = tf.fill((BATCH, 8, 8, 2), 0.0) + tf.constant([0.3, -0.2])
    near = tf.argmin(tf.reduce_sum(tf.square(bins - [0.3, -0.2]), -1))
    confident = tf.one_hot(tf.fill((BATCH, 2, 2), near), len(bins)) * 10.0
    wrong = tf.one_hot(tf.fill((BATCH, 2, 2), 0), len(bins)) * 10.0
    uniform = tf.zeros((BATCH, 2, 2, len(bins)))
    assert _cross_entropy(confident, true_chroma) < _cross_entropy(uniform, true_chroma) < _cross_entropy(wrong, true_chroma)


def _real_loss_of_a_sure_discriminator(loss_fn, real_score: float, softening: float) -> float:
    """The real-photo term when the discriminator is all but certain every real photo is real."""
    scores = tf.fill((64, 1), real_score)
    parts = loss_fn(scores, tf.zeros_like(scores), global_batch_size=64, label_softening=softening, seed=tf.constant([1, 2], tf.int64))
    return float(parts["real"])


def test_the_seeds_real_labels_are_softened_by_at_most_the_softening():
    sure = 0.999  # a probability: the seed's discriminator ends in a sigmoid
    unsoftened = _real_loss_of_a_sure_discriminator(losses.seed_discriminator_loss, sure, 0.0)
    softened = _real_loss_of_a_sure_discriminator(losses.seed_discriminator_loss, sure, 0.1)
    # Labels drawn from [0.9, 1] average 0.95: BCE of about 0.05 * -log(0.001) = 0.35, and at most label 0.9's.
    assert unsoftened < 0.01
    assert 0.2 < softened < -(0.9 * np.log(sure) + 0.1 * np.log(1 - sure))


def test_our_discriminator_smooths_real_labels_to_one_minus_the_softening():
    sure = 8.0  # a logit: ours outputs logits
    unsoftened = _real_loss_of_a_sure_discriminator(losses.discriminator_loss, sure, 0.0)
    softened = _real_loss_of_a_sure_discriminator(losses.discriminator_loss, sure, 0.1)
    probability = 1 / (1 + np.exp(-sure))
    assert unsoftened == pytest.approx(-np.log(probability), rel=1e-4)
    assert softened == pytest.approx(-(0.9 * np.log(probability) + 0.1 * np.log(1 - probability)), rel=1e-4)


def test_our_discriminator_loss_averages_its_real_and_fake_terms():
    real_logits, fake_logits = tf.fill((BATCH, 2, 2, 1), 2.0), tf.fill((BATCH, 2, 2, 1), 1.0)
    parts = losses.discriminator_loss(
        real_logits, fake_logits, global_batch_size=BATCH, label_softening=0.0, seed=tf.constant([1, 2], tf.int64)
    )
    assert float(parts["fake"]) == pytest.approx(np.log1p(np.exp(1.0)), rel=1e-5)  # BCE(0, sigmoid(1))
    assert float(parts["total"]) == pytest.approx(0.5 * (float(parts["real"]) + float(parts["fake"])))


def test_each_member_learns_from_its_own_loss_and_serves_the_average():
    members = get_architecture("unet", members=2, l1_weight=1.0)
    real = tf.zeros((BATCH, 4, 4, 2))
    fake = tf.concat([tf.fill((BATCH, 4, 4, 2), 0.4), tf.fill((BATCH, 4, 4, 2), -0.2)], axis=-1)

    # Averaged first, their errors would cancel to 0.1; each member's counts: (0.4 + 0.2) / 2.
    assert float(members.generator_loss(fake, real, None, global_batch_size=BATCH)["l1"]) == pytest.approx(0.3)
    assert np.allclose(members.chroma(fake).numpy(), 0.1)


def test_mixed_members_alternate_plain_and_rebalanced_l1():
    assert losses.member_chroma_losses("l1-mixed", 4) == [losses.chroma_l1, losses.chroma_l1_rebalanced] * 2
    assert losses.member_chroma_losses("l1", 3) == [losses.chroma_l1] * 3


def test_a_mixed_pair_averages_a_plain_and_a_rebalanced_members_loss():
    real = _mostly_dull_batch()
    dull_everywhere = tf.fill(real.shape, 0.02)
    mixed = get_architecture("unet", members=2, l1_weight=1.0, chroma_loss="l1-mixed")
    loss = float(mixed.generator_loss(tf.concat([dull_everywhere] * 2, axis=-1), real, None, global_batch_size=BATCH)["l1"])
    plain = float(losses.chroma_l1(dull_everywhere, real, global_batch_size=BATCH, weight=1.0)["l1"])
    rebalanced = float(losses.chroma_l1_rebalanced(dull_everywhere, real, global_batch_size=BATCH, weight=1.0)["l1"])
    assert loss == pytest.approx((plain + rebalanced) / 2)
