"""Lab conversions inside the graph agree with scikit-image's."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from skimage.color import deltaE_ciede2000, rgb2lab

from colorizer_core import imaging
from colorizer_core.hints import Hint
from colorizer_trainer import color


def _random_rgb(shape=(2, 5, 7, 3)) -> np.ndarray:
    return np.random.default_rng(0).random(shape).astype(np.float32)


def test_rgb_to_lab_matches_scikit_image():
    rgb = _random_rgb()
    np.testing.assert_allclose(color.rgb_to_lab(tf.constant(rgb)).numpy(), rgb2lab(rgb), atol=0.02)


def test_lab_to_rgb_inverts_rgb_to_lab():
    rgb = _random_rgb()
    np.testing.assert_allclose(color.lab_to_rgb(color.rgb_to_lab(tf.constant(rgb))).numpy(), rgb, atol=1e-3)


def test_gray_lightness_is_the_lightness_of_the_neutral_colour():
    gray = _random_rgb((4, 4, 1))
    expected = rgb2lab(np.repeat(gray, 3, axis=-1))[..., :1]
    np.testing.assert_allclose(color.gray_to_lightness(tf.constant(gray)).numpy(), expected, atol=0.01)


def test_zero_chroma_on_gray_gives_back_the_gray():
    gray = _random_rgb((1, 4, 4, 1))
    rgb = color.lab_to_rgb(color.lab_from_gray_and_ab(tf.constant(gray), tf.zeros((1, 4, 4, 2)))).numpy()
    np.testing.assert_allclose(rgb, np.repeat(gray, 3, axis=-1), atol=1e-3)


def test_the_chroma_threshold_lowers_saturation_keeps_hue_and_never_goes_past_gray():
    ab = np.array([[30.0, 40.0], [3.0, -4.0], [0.0, 0.0]], np.float32)  # saturations 50, 5 and 0
    decoded = color.decode_chroma(tf.constant(ab / color.AB_SCALE), gain=1.0, threshold=10.0).numpy() * color.AB_SCALE
    np.testing.assert_allclose(decoded, [[24.0, 32.0], [0.0, 0.0], [0.0, 0.0]], atol=1e-4)


def test_the_chroma_gain_scales_after_the_threshold_and_stays_in_range():
    ab = np.array([[0.5, 0.0], [0.9, 0.0]], np.float32)
    decoded = color.decode_chroma(tf.constant(ab), gain=2.0, threshold=0.1 * color.AB_SCALE).numpy()
    np.testing.assert_allclose(decoded, [[0.8, 0.0], [1.0, 0.0]], atol=1e-5)


def test_every_srgb_colour_has_chroma_within_the_scale():
    corners = np.array([[r, g, b] for r in (0, 1) for g in (0, 1) for b in (0, 1)], np.float32)
    ab = color.rgb_to_lab(tf.constant(corners)).numpy()[:, 1:]
    assert np.abs(ab).max() < color.AB_SCALE


def _random_lab_pairs(count=3000) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of sRGB colours in Lab: a third with the second gray, a third with equal lightness."""
    first, second = rgb2lab(_random_rgb((count, 3))), rgb2lab(np.random.default_rng(1).random((count, 3)))
    second[: count // 3, 1:] = 0.0
    second[count // 3 : 2 * count // 3, 0] = first[count // 3 : 2 * count // 3, 0]
    return first, second


def test_ciede2000_matches_scikit_image():
    first, second = _random_lab_pairs()
    ours = color.ciede2000(tf.constant(first, tf.float32), tf.constant(second, tf.float32)).numpy()
    np.testing.assert_allclose(ours, deltaE_ciede2000(first, second), atol=1e-3)


@pytest.mark.parametrize(
    "prediction",
    [[0.0, 0.0], [1e-4, -7e-5], [-5.0, -40.0], [-5.0 + 1e-5, -40.0], [-60.0, 10.0]],
    ids=["gray", "nearly-gray", "the-truth", "nearly-the-truth", "far"],
)
# A blue, where the formula's rotation term joins chroma and hue differences.
@pytest.mark.parametrize("truth", [[0.0, 0.0], [-5.0, -40.0]], ids=["gray-truth", "blue-truth"])
def test_ciede2000s_gradient_stays_finite_and_bounded_near_gray_and_near_the_truth(prediction, truth):
    predicted = tf.Variable([[50.0, *prediction]])
    with tf.GradientTape() as tape:
        difference = color.ciede2000(predicted, tf.constant([[50.0, *truth]]))
    gradient = tape.gradient(difference, predicted).numpy()
    # A change of one Lab unit changes CIEDE2000 by at most about that much (1.5 for a' near gray).
    assert np.isfinite(gradient).all() and np.abs(gradient).max() < 2.0


SPREAD_SIGMA = 16.0  # model pixels
BLUE = Hint(x=0, y=0, color="#1a4de6")


def _one_hint(size: int, row: int, column: int) -> np.ndarray:
    """The model's hints input with one blue hint at (row, column), painted as the service paints it."""
    return imaging.hint_map([BLUE.model_copy(update={"x": column, "y": row})], (size, size), size)[None]


def _spread(chroma: np.ndarray, gray: np.ndarray, hints: np.ndarray, native_size: int = 128) -> np.ndarray:
    spread = color.spread_hints(
        tf.constant(chroma), tf.constant(gray), tf.constant(hints), sigma=SPREAD_SIGMA, native_size=native_size
    )
    return spread.numpy()


def _ab(rgb) -> np.ndarray:
    return rgb2lab(np.array(rgb, np.float32))[1:] / color.AB_SCALE


def test_without_hints_the_spread_leaves_the_chroma_as_predicted():
    chroma = np.random.default_rng(0).uniform(-0.3, 0.3, (1, 64, 64, 2)).astype(np.float32)
    spread = _spread(chroma, np.full((1, 64, 64, 1), 0.5, np.float32), np.zeros((1, 64, 64, 4), np.float32))
    np.testing.assert_allclose(spread, chroma, atol=1e-6)


def test_a_hint_colours_its_neighbourhood_and_fades_with_distance():
    size = 128
    spread = _spread(np.zeros((1, size, size, 2), np.float32), np.full((1, size, size, 1), 0.5, np.float32), _one_hint(size, 64, 64))

    wanted = _ab(BLUE.rgb)
    np.testing.assert_allclose(spread[0, 64, 64], wanted, atol=0.1 * np.linalg.norm(wanted))
    strength = [np.linalg.norm(spread[0, 64, 64 + offset]) for offset in (0, 16, 32, 63)]
    assert strength == sorted(strength, reverse=True)
    assert strength[1] > 0.5 * strength[0] and strength[3] < 0.1 * strength[0]


def test_a_hint_does_not_cross_into_a_much_lighter_region():
    size = 128
    gray = np.full((1, size, size, 1), 0.2, np.float32)
    gray[:, :, 64:] = 0.9  # the right half is far lighter
    spread = _spread(np.zeros((1, size, size, 2), np.float32), gray, _one_hint(size, 64, 56))

    dark_side, light_side = np.linalg.norm(spread[0, 64, 60]), np.linalg.norm(spread[0, 64, 68])
    assert light_side < 0.1 * dark_side


def test_a_hint_spreads_over_the_same_share_of_the_photo_at_any_size_it_is_seen_at():
    def strength_across(size: int) -> np.ndarray:
        middle = size // 2
        gray = np.full((1, size, size, 1), 0.5, np.float32)
        spread = _spread(np.zeros((1, size, size, 2), np.float32), gray, _one_hint(size, middle, middle), native_size=128)
        return np.linalg.norm(spread[0, middle, middle :: size // 16], axis=-1)  # every 1/16 of the side

    np.testing.assert_allclose(strength_across(256), strength_across(128), atol=0.05 * strength_across(128)[0])
