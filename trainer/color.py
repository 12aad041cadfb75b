"""sRGB <-> CIE Lab (D65) in TensorFlow, so the colour space lives inside the exported graph.

Images are float tensors with channels last: RGB in [0, 1]; L in [0, 100], a and b roughly in
[-110, 110]. The service never needs these: the exported model already speaks RGB.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from colorizer_core.contract import HINT_MASK_CHANNEL, HINT_PATCH

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


def decode_chroma(chroma: tf.Tensor, *, gain: float | tf.Tensor, threshold: float) -> tf.Tensor:
    """Chroma ``(B, H, W, 2)`` in [-1, 1] as exported: each pixel's saturation lowered by ``threshold``
    (Lab units; never below gray, hue kept), then times ``gain``: one for all, or a tensor ``(B,)``
    of one per photo.

    The threshold takes away the weak colour a regression head predicts where it is unsure (the
    median of colours it cannot tell apart), so a gain can strengthen the rest without it.
    """
    if threshold:
        saturation = tf.norm(chroma, axis=-1, keepdims=True)
        chroma *= tf.math.divide_no_nan(tf.nn.relu(saturation - threshold / AB_SCALE), saturation)
    if tf.is_tensor(gain):
        gain = tf.reshape(tf.cast(gain, chroma.dtype), [-1, 1, 1, 1])
    elif gain == 1.0:
        return chroma
    return tf.clip_by_value(gain * chroma, -1.0, 1.0)


# --- Colour hints spread after the network, to the pixels about as light (a bilateral grid) -----

HINT_SPREAD_STRIDE = 4  # the spread's grid has 1/4 of the native side (a bilateral grid's cells)
LIGHTNESS_BINS = 8  # the grid's lightness axis: a hint spreads to pixels about as light as it is
LIGHTNESS_SIGMA = 0.1  # of L in [0, 1]
HINT_SPREAD_FALLOFF = 0.01  # a lone hint's colour takes half of a pixel where its weight is this fraction of its peak


def spread_hints(chroma: tf.Tensor, gray: tf.Tensor, hints: tf.Tensor, *, sigma: float, native_size: int) -> tf.Tensor:
    """Chroma ``(B, H, W, 2)`` in [-1, 1] moved towards the colours of ``hints`` ``(B, H, W, 4)``.

    The network follows a hint only partly. Each hint's colour is spread to the pixels near it (a
    Gaussian of ``sigma`` pixels of the model's ``native_size``, the same share of the photo at any
    size it is seen at) that are about as light as it is, as a bilateral grid does (Chen et al. 2007);
    where hints disagree their colours are averaged. Each pixel's chroma moves towards that colour by
    the share of hint weight that reaches it: near the hints it is theirs, far from every hint the
    model's stays.
    """
    mask = hints[..., HINT_MASK_CHANNEL : HINT_MASK_CHANNEL + 1]  # (B, H, W, 1)
    wanted = mask * rgb_to_lab(hints[..., :3])[..., 1:] / AB_SCALE  # (B, H, W, 2)
    lightness = gray_to_lightness(gray) / 100.0  # (B, H, W, 1)
    centres = tf.linspace(0.0, 1.0, LIGHTNESS_BINS)
    membership = tf.exp(-tf.square(lightness - centres) / (2 * LIGHTNESS_SIGMA**2))  # (B, H, W, K)
    membership /= tf.reduce_sum(membership, axis=-1, keepdims=True)
    # Per lightness bin: the hints' summed colours (2 channels) and their weight (1), per grid cell.
    splatted = tf.concat([membership[..., None] * wanted[..., None, :], (membership * mask)[..., None]], axis=-1)
    batch, height, width = tf.unstack(tf.shape(chroma)[:3])
    splatted = tf.reshape(splatted, [batch, height, width, LIGHTNESS_BINS * 3])
    grid = native_size // HINT_SPREAD_STRIDE
    pixels_per_cell = tf.cast(height * width, tf.float32) / grid**2
    cells = tf.image.resize(splatted, [grid, grid], method="area") * pixels_per_cell
    cells = _gaussian_blur(cells, sigma / HINT_SPREAD_STRIDE)
    sliced = tf.reshape(tf.image.resize(cells, [height, width]), [batch, height, width, LIGHTNESS_BINS, 3])
    sliced = tf.reduce_sum(membership[..., None] * sliced, axis=-2)  # (B, H, W, 3)
    lone_hint_peak = HINT_PATCH**2 / (2 * math.pi * (sigma / HINT_SPREAD_STRIDE) ** 2)  # at the native size
    colours, weight = sliced[..., :2], sliced[..., 2:]
    fade = HINT_SPREAD_FALLOFF * lone_hint_peak
    # chroma + coverage * (the hints' mean colour - chroma), coverage = weight / (weight + fade)
    return tf.clip_by_value(chroma + (colours - weight * chroma) / (weight + fade), -1.0, 1.0)


def _gaussian_blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """Each channel of ``images`` ``(B, H, W, C)`` blurred by a Gaussian (zero past the border)."""
    radius = max(1, math.ceil(3 * sigma))
    taps = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma**2))
    taps = tf.constant(taps / taps.sum(), tf.float32)
    channels = images.shape[-1]
    rows = tf.tile(tf.reshape(taps, [-1, 1, 1, 1]), [1, 1, channels, 1])
    columns = tf.tile(tf.reshape(taps, [1, -1, 1, 1]), [1, 1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(images, rows, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(blurred, columns, [1, 1, 1, 1], "SAME")


def lab_from_gray_and_ab(gray: tf.Tensor, ab_scaled: tf.Tensor) -> tf.Tensor:
    """Join gray ``(B, H, W, 1)`` with chroma ``(B, H, W, 2)`` in [-1, 1] into Lab."""
    return tf.concat([gray_to_lightness(gray), ab_scaled * AB_SCALE], axis=-1)


# --- CIEDE2000, the colour difference the issue scores by, differentiable ----------------------

_25_TO_THE_7TH = 25.0**7
_TINY = 1e-12  # keeps square roots and divisions finite (and their gradients) at zero chroma


def _safe_sqrt(x: tf.Tensor) -> tf.Tensor:
    return tf.sqrt(tf.maximum(x, _TINY))


def _chroma_weight(mean_chroma: tf.Tensor) -> tf.Tensor:
    """sqrt(C^7 / (C^7 + 25^7)): 0 for neutral colours, towards 1 for vivid ones."""
    c7 = mean_chroma**7
    return _safe_sqrt(c7 / (c7 + _25_TO_THE_7TH))


def ciede2000(lab1: tf.Tensor, lab2: tf.Tensor) -> tf.Tensor:
    """CIEDE2000 colour difference of ``(..., 3)`` Lab tensors, ``(...)`` (Sharma et al. 2005).

    Written for a loss: the formula's hue difference grows like the square root of a chroma near
    gray, so its gradient there is unbounded. Here chroma and hue differences split the plain
    (a', b') distance, the mean hue (a weight) passes no gradient, and the small rotation term's
    hue difference takes its gradient from the difference along the mean hue. The values stay exact.
    """
    lab1, lab2 = tf.cast(lab1, tf.float32), tf.cast(lab2, tf.float32)
    l1, a1, b1 = tf.unstack(lab1, axis=-1)
    l2, a2, b2 = tf.unstack(lab2, axis=-1)
    stretch = 1.0 + 0.5 * (1.0 - _chroma_weight((_safe_sqrt(a1**2 + b1**2) + _safe_sqrt(a2**2 + b2**2)) / 2))
    a1, a2 = stretch * a1, stretch * a2
    c1, c2 = _safe_sqrt(a1**2 + b1**2), _safe_sqrt(a2**2 + b2**2)
    mean_l, mean_c, mean_hue = (l1 + l2) / 2, (c1 + c2) / 2, tf.stop_gradient(_mean_hue(a1, b1, c1, a2, b2, c2))

    distance_squared = (a2 - a1) ** 2 + (b2 - b1) ** 2
    delta_c = c2 - c1
    delta_h_squared = tf.maximum(distance_squared - delta_c**2, 0.0)
    delta_h_along_mean_hue = (b2 - b1) * tf.cos(mean_hue) - (a2 - a1) * tf.sin(mean_hue)
    delta_h_exact = tf.sign(a1 * b2 - b1 * a2) * _safe_sqrt(delta_h_squared)
    delta_h = delta_h_along_mean_hue + tf.stop_gradient(delta_h_exact - delta_h_along_mean_hue)

    degrees = np.pi / 180
    t = (
        1.0
        - 0.17 * tf.cos(mean_hue - 30 * degrees)
        + 0.24 * tf.cos(2 * mean_hue)
        + 0.32 * tf.cos(3 * mean_hue + 6 * degrees)
        - 0.20 * tf.cos(4 * mean_hue - 63 * degrees)
    )
    rotation = 30 * degrees * tf.exp(-(((mean_hue / degrees - 275.0) / 25.0) ** 2))
    s_l = 1.0 + 0.015 * (mean_l - 50.0) ** 2 / tf.sqrt(20.0 + (mean_l - 50.0) ** 2)
    s_c = 1.0 + 0.045 * mean_c
    s_h = 1.0 + 0.015 * mean_c * t
    r_t = -tf.sin(2 * rotation) * 2 * _chroma_weight(mean_c)
    squared = (
        ((l2 - l1) / s_l) ** 2
        + (delta_c / s_c) ** 2
        + delta_h_squared / s_h**2
        + r_t * (delta_c / s_c) * (delta_h / s_h)
    )
    return _safe_sqrt(squared)


def _mean_hue(a1, b1, c1, a2, b2, c2) -> tf.Tensor:
    """The hue halfway between two colours', in [0, 2 pi): the direction of their unit hue vectors' sum.

    A gray's hue vector is (0, 0), so the other colour's hue is the mean, as the formula's rules say.
    """
    x, y = a1 / c1 + a2 / c2, b1 / c1 + b2 / c2
    no_hue = x**2 + y**2 < _TINY
    return tf.math.floormod(tf.atan2(y, tf.where(no_hue, 1.0, x)), 2 * np.pi)


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
