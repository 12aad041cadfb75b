"""Lab conversions inside the graph agree with scikit-image's."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from skimage.color import rgb2lab

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


def test_every_srgb_colour_has_chroma_within_the_scale():
    corners = np.array([[r, g, b] for r in (0, 1) for g in (0, 1) for b in (0, 1)], np.float32)
    ab = color.rgb_to_lab(tf.constant(corners)).numpy()[:, 1:]
    assert np.abs(ab).max() < color.AB_SCALE
