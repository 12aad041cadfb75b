from __future__ import annotations

import numpy as np
import pytest

from colorizer_trainer import image_quality

SIDE = 32
RED, GREEN, BLACK, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 0), (255, 255, 255)


def solid(colour: tuple[int, int, int], side: int = SIDE) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (side, side, 3)).copy()


def photo_like(seed: int = 0) -> np.ndarray:
    """A smooth, colourful uint8 image: red ramps left to right, green top to bottom, blue noise."""
    ramp = np.linspace(0, 255, SIDE)
    rng = np.random.default_rng(seed)
    red, green = np.meshgrid(ramp, ramp)
    blue = rng.uniform(0, 255, (SIDE, SIDE))
    return np.stack([red, green, blue], axis=-1).round().astype(np.uint8)


@pytest.mark.parametrize("as_float", [False, True], ids=["uint8", "float"])
def test_identical_images_score_perfectly(as_float: bool) -> None:
    image = photo_like()
    if as_float:
        image = image / 255.0
    assert image_quality.psnr(image, image) == image_quality.PSNR_CAP_DB
    assert image_quality.ssim(image, image) == pytest.approx(1.0)
    assert image_quality.ciede2000(image, image) == pytest.approx(0.0, abs=1e-9)


def test_uint8_and_float_inputs_give_the_same_scores() -> None:
    pred, true = photo_like(seed=1), photo_like(seed=2)
    for metric in (image_quality.psnr, image_quality.ssim, image_quality.ciede2000):
        assert metric(pred, true) == pytest.approx(metric(pred / 255.0, true / 255.0))


def test_psnr_of_a_uniform_error_follows_from_its_mean_squared_error() -> None:
    true = np.zeros((SIDE, SIDE, 3))
    assert image_quality.psnr(true + 0.1, true) == pytest.approx(20.0)  # MSE 0.01 -> 10 log10(100)
    assert image_quality.psnr(solid(WHITE), solid(BLACK)) == pytest.approx(0.0)


def test_ssim_of_black_against_white_is_near_zero() -> None:
    assert image_quality.ssim(solid(BLACK), solid(WHITE)) < 0.01


def test_ciede2000_of_black_against_white_is_their_lightness_gap() -> None:
    # L* is 0 and 100 and the mean lightness is 50, where CIEDE2000's lightness weight is exactly 1.
    assert image_quality.ciede2000(solid(BLACK), solid(WHITE)) == pytest.approx(100.0, abs=0.01)


def test_ciede2000_is_a_mean_over_pixels() -> None:
    half_white = solid(BLACK)
    half_white[: SIDE // 2] = WHITE
    assert image_quality.ciede2000(half_white, solid(BLACK)) == pytest.approx(50.0, abs=0.01)


def test_metrics_reject_images_of_different_shapes() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        image_quality.psnr(solid(RED, side=8), solid(RED, side=9))


@pytest.mark.parametrize("level", [0, 77, 255])
def test_gray_images_have_zero_colorfulness(level: int) -> None:
    assert image_quality.colorfulness(solid((level,) * 3)) == pytest.approx(0.0)
    gray_ramp = np.repeat(photo_like()[..., :1], 3, axis=-1)
    assert image_quality.colorfulness(gray_ramp) == pytest.approx(0.0)


def test_colorfulness_of_pure_red_comes_from_its_mean_opponent_colours() -> None:
    # No spread; red-green is 255 and yellow-blue is 127.5 at every pixel.
    expected = 0.3 * np.hypot(255.0, 127.5)
    assert image_quality.colorfulness(solid(RED)) == pytest.approx(expected)
    assert image_quality.colorfulness(solid(RED) / 255.0) == pytest.approx(expected)


def test_palette_histogram_counts_every_pixel_of_every_image() -> None:
    palette = image_quality.PaletteHistogram()
    palette.add(photo_like(seed=1))
    palette.add(solid(RED, side=5))
    assert palette.total == SIDE * SIDE + 25
    assert palette.counts.shape == (image_quality.PALETTE_BINS, image_quality.PALETTE_BINS)


def test_palette_histogram_clips_colours_outside_its_range_into_the_edge_bins() -> None:
    palette = image_quality.PaletteHistogram()
    palette.add(solid(GREEN, side=4))  # a* is about -86 (below the range), b* about 83 (above it)
    assert palette.counts[0, image_quality.PALETTE_BINS - 1] == 16


def test_js_divergence_of_identical_palettes_is_zero_whatever_their_size() -> None:
    once, thrice = image_quality.PaletteHistogram(), image_quality.PaletteHistogram()
    once.add(photo_like())
    for _ in range(3):
        thrice.add(photo_like())
    assert once.js_divergence(thrice) == pytest.approx(0.0, abs=1e-12)


def test_js_divergence_of_disjoint_palettes_is_one_bit() -> None:
    reds, greens = image_quality.PaletteHistogram(), image_quality.PaletteHistogram()
    reds.add(solid(RED))
    greens.add(solid(GREEN))
    assert reds.js_divergence(greens) == pytest.approx(1.0)
    assert greens.js_divergence(reds) == pytest.approx(1.0)


def test_js_divergence_of_overlapping_palettes_matches_its_definition() -> None:
    # p = (1/2, 1/2), q = (1, 0), mixture m = (3/4, 1/4).
    expected = 0.5 * (0.5 * np.log2(0.5 / 0.75) + 0.5 * np.log2(0.5 / 0.25)) + 0.5 * np.log2(1 / 0.75)
    assert image_quality.jensen_shannon_bits(np.array([2, 2]), np.array([5, 0])) == pytest.approx(expected)


def test_js_divergence_refuses_an_empty_palette() -> None:
    filled = image_quality.PaletteHistogram()
    filled.add(solid(RED))
    with pytest.raises(ValueError, match="empty"):
        filled.js_divergence(image_quality.PaletteHistogram())
