"""sRGB <-> CIE Lab (D65) in TensorFlow, so the colour space lives inside the exported graph.

Images are float tensors with channels last: RGB in [0, 1]; L in [0, 100], a and b roughly in
[-110, 110]. The service never needs these: the exported model already speaks RGB.
"""

from __future__ import annotations

import tensorflow as tf

# sRGB primaries to CIE XYZ, D65 white; rows are X, Y, Z.
_RGB_TO_XYZ = [
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
]
_XYZ_TO_RGB = [
    [3.240479, -1.537150, -0.498535],
    [-0.969256, 1.875992, 0.041556],
    [0.055648, -0.204043, 1.057311],
]
_D65_WHITE = (0.950456, 1.0, 1.088754)
_EPSILON = 216.0 / 24389.0  # CIE's threshold between the cube root and the linear segment
_KAPPA = 24389.0 / 27.0

AB_SCALE = 110.0  # |a|, |b| of sRGB colours stay under this, so ab / AB_SCALE is in [-1, 1]


def _srgb_to_linear(rgb: tf.Tensor) -> tf.Tensor:
    rgb = tf.clip_by_value(rgb, 0.0, 1.0)
    return tf.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(linear: tf.Tensor) -> tf.Tensor:
    linear = tf.clip_by_value(linear, 0.0, 1.0)
    return tf.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def _f(t: tf.Tensor) -> tf.Tensor:
    return tf.where(t > _EPSILON, tf.math.pow(tf.maximum(t, _EPSILON), 1 / 3), (_KAPPA * t + 16) / 116)


def _f_inverse(t: tf.Tensor) -> tf.Tensor:
    return tf.where(t**3 > _EPSILON, t**3, (116 * t - 16) / _KAPPA)


def rgb_to_lab(rgb: tf.Tensor) -> tf.Tensor:
    """``(..., 3)`` sRGB in [0, 1] to ``(..., 3)`` Lab."""
    xyz = tf.linalg.matvec(tf.constant(_RGB_TO_XYZ, rgb.dtype), _srgb_to_linear(rgb))
    fx, fy, fz = tf.unstack(_f(xyz / tf.constant(_D65_WHITE, rgb.dtype)), axis=-1)
    return tf.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], axis=-1)


def lab_to_rgb(lab: tf.Tensor) -> tf.Tensor:
    """``(..., 3)`` Lab to ``(..., 3)`` sRGB, clipped to [0, 1]."""
    lightness, a, b = tf.unstack(lab, axis=-1)
    fy = (lightness + 16) / 116
    f = tf.stack([fy + a / 500, fy, fy - b / 200], axis=-1)
    xyz = _f_inverse(f) * tf.constant(_D65_WHITE, lab.dtype)
    linear = tf.linalg.matvec(tf.constant(_XYZ_TO_RGB, lab.dtype), xyz)
    return _linear_to_srgb(linear)


def gray_to_lightness(gray: tf.Tensor) -> tf.Tensor:
    """``(..., 1)`` gray in [0, 1], read as a neutral sRGB value, to ``(..., 1)`` L in [0, 100]."""
    return 116 * _f(_srgb_to_linear(gray)) - 16


def lab_from_gray_and_ab(gray: tf.Tensor, ab_scaled: tf.Tensor) -> tf.Tensor:
    """Join gray ``(B, H, W, 1)`` with chroma ``(B, H, W, 2)`` in [-1, 1] into Lab."""
    return tf.concat([gray_to_lightness(gray), ab_scaled * AB_SCALE], axis=-1)


# --- chroma as a distribution over quantized (a, b) bins (Zhang et al. 2016) --------------------

AB_BIN_STEP = 10.0  # bin side in Lab units
SOFT_ENCODING_SIGMA = 5.0  # Gaussian width of a true colour's spread over nearby bins


def gamut_ab_bins(step: float = AB_BIN_STEP) -> tf.Tensor:
    """The centres ``(Q, 2)`` of the (a, b) bins that some sRGB colour falls in, scaled by 1/AB_SCALE.

    Found by converting a dense grid of sRGB colours: about 250-320 bins for a step of 10.
    """
    levels = tf.linspace(0.0, 1.0, 48)
    grid = tf.stack(tf.meshgrid(levels, levels, levels, indexing="ij"), axis=-1)
    ab = tf.reshape(rgb_to_lab(grid)[..., 1:], [-1, 2])
    occupied = tf.unique(tf.reduce_sum(tf.cast(tf.round(ab / step) + 64, tf.int32) * [1, 1000], axis=-1))[0]
    occupied = tf.sort(occupied)
    centres = tf.stack([occupied % 1000 - 64, occupied // 1000 - 64], axis=-1)
    return tf.cast(centres, tf.float32) * step / AB_SCALE


def soft_encode(ab_scaled: tf.Tensor, bins: tf.Tensor, sigma: float = SOFT_ENCODING_SIGMA) -> tf.Tensor:
    """``(..., 2)`` chroma in [-1, 1] to ``(..., Q)`` probabilities: a Gaussian over nearby bins."""
    distance = tf.reduce_sum(tf.square(ab_scaled[..., None, :] - bins), axis=-1) * AB_SCALE**2  # (..., Q)
    return tf.nn.softmax(-distance / (2.0 * sigma**2), axis=-1)


def annealed_mean(logits: tf.Tensor, bins: tf.Tensor, temperature: float) -> tf.Tensor:
    """``(..., Q)`` logits to ``(..., 2)`` chroma: the mean of the distribution sharpened by ``temperature``.

    1 gives the plain mean (safe, drab); towards 0 it approaches the mode (vivid, riskier).
    """
    probabilities = tf.nn.softmax(tf.cast(logits, tf.float32) / temperature, axis=-1)
    return tf.linalg.matmul(probabilities, bins)
