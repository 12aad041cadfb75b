"""Image-quality and colour metrics for colorization, on RGB images (uint8 in 0..255 or float in 0..1).

Per image: PSNR, SSIM, mean CIEDE2000 colour difference and colourfulness. Over a whole test set:
the palette divergence, the Jensen-Shannon divergence between where predicted and true pixels fall
in the Lab (a, b) plane, accumulated with ``PaletteHistogram`` so no set has to fit in memory.
"""

from __future__ import annotations

import numpy as np
import scipy.spatial.distance
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

PALETTE_BINS = 32  # per axis of the (a, b) plane
PALETTE_RANGE = (-80.0, 80.0)  # a and b outside this land in the edge bins
PSNR_CAP_DB = 100.0  # identical images; above any real difference between 8-bit images of < 10 MP


def to_unit_float(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` RGB as float64 in [0, 1]: uint8 is scaled by 1/255, floats are taken as is."""
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"Expected an (H, W, 3) RGB image. Received: shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    return np.clip(array.astype(np.float64), 0.0, 1.0)


def _check_same_shape(pred: np.ndarray, true: np.ndarray) -> None:
    if pred.shape != true.shape:
        raise ValueError(f"Prediction and truth differ in shape. Received: {pred.shape} and {true.shape}")


def psnr(pred_rgb: np.ndarray, true_rgb: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, capped at ``PSNR_CAP_DB`` so identical images stay finite."""
    pred, true = to_unit_float(pred_rgb), to_unit_float(true_rgb)
    _check_same_shape(pred, true)
    mse = float(np.mean((pred - true) ** 2))
    if mse == 0.0:
        return PSNR_CAP_DB
    return min(10.0 * np.log10(1.0 / mse), PSNR_CAP_DB)


def ssim(pred_rgb: np.ndarray, true_rgb: np.ndarray) -> float:
    """Structural similarity, averaged over the three channels."""
    pred, true = to_unit_float(pred_rgb), to_unit_float(true_rgb)
    _check_same_shape(pred, true)
    return float(structural_similarity(pred, true, channel_axis=-1, data_range=1.0))


def ciede2000(pred_rgb: np.ndarray, true_rgb: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference per pixel (about 2.3 is a just-noticeable difference)."""
    pred, true = to_unit_float(pred_rgb), to_unit_float(true_rgb)
    _check_same_shape(pred, true)
    return float(np.mean(deltaE_ciede2000(rgb2lab(pred), rgb2lab(true))))


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness on the 0..255 scale: 0 for any gray image."""
    red, green, blue = np.moveaxis(to_unit_float(rgb) * 255.0, -1, 0)
    red_green = red - green
    yellow_blue = 0.5 * (red + green) - blue
    spread = np.hypot(red_green.std(), yellow_blue.std())
    centre = np.hypot(red_green.mean(), yellow_blue.mean())
    return float(spread + 0.3 * centre)


class PaletteHistogram:
    """Counts of pixels over a ``PALETTE_BINS`` x ``PALETTE_BINS`` grid of the Lab (a, b) plane."""

    def __init__(self) -> None:
        self.counts = np.zeros((PALETTE_BINS, PALETTE_BINS), dtype=np.int64)  # (a bin, b bin)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def add(self, rgb: np.ndarray) -> None:
        """Count every pixel of one ``(H, W, 3)`` RGB image."""
        lab = rgb2lab(to_unit_float(rgb))
        a_bins, b_bins = _bin_index(lab[..., 1]), _bin_index(lab[..., 2])
        flat = np.bincount((a_bins * PALETTE_BINS + b_bins).ravel(), minlength=PALETTE_BINS**2)
        self.counts += flat.reshape(PALETTE_BINS, PALETTE_BINS)

    def js_divergence(self, other: PaletteHistogram) -> float:
        """Jensen-Shannon divergence in bits to ``other``: 0 for the same palette, 1 for disjoint ones."""
        return jensen_shannon_bits(self.counts, other.counts)


def _bin_index(values: np.ndarray) -> np.ndarray:
    low, high = PALETTE_RANGE
    width = (high - low) / PALETTE_BINS
    return np.clip(np.floor((values - low) / width), 0, PALETTE_BINS - 1).astype(np.int64)


def jensen_shannon_bits(first: np.ndarray, second: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits between two histograms of the same shape (any scale)."""
    p, q = (np.asarray(counts, dtype=np.float64).ravel() for counts in (first, second))
    if p.shape != q.shape:
        raise ValueError(f"Histograms differ in shape. Received: {p.shape} and {q.shape}")
    if p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("Cannot compare an empty histogram; add at least one image to each.")
    distance = scipy.spatial.distance.jensenshannon(p, q, base=2)  # the square root of the divergence
    return float(np.clip(distance**2, 0.0, 1.0))  # rounding can stray just outside the true bounds
