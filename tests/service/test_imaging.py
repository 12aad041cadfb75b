"""Image processing (colorizer_core.imaging) called directly: the colour merge and the encoders."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from service_testing import photo

from colorizer_core import imaging
from colorizer_core.imaging import DEFAULT_PNG_COMPRESS_LEVEL, apply_chroma, encode_image, encode_png, model_input
from colorizer_service.settings import Settings


def decoded(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image)


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4, 6, 9])  # 1 to 3 by ISA-L, the others by zlib
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_png_at_every_compress_level_decodes_to_the_same_pixels(level: int, mode: str) -> None:
    image = photo(61, 37, mode)
    assert np.array_equal(decoded(encode_image(image, "png", png_compress_level=level)), np.asarray(image))


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1)])
def test_png_of_a_single_row_or_column_decodes_to_the_same_pixels(size: tuple[int, int]) -> None:
    pixels = np.asarray(photo(*size))
    assert np.array_equal(decoded(encode_png(pixels)), pixels)


def test_png_compresses_more_at_a_higher_level() -> None:
    image = photo(200, 150)
    sizes = [len(encode_image(image, "png", png_compress_level=level)) for level in (0, 1, 9)]
    assert sizes[0] > sizes[1] >= sizes[2]


@pytest.mark.parametrize("mode", ["RGBA", "P"])
def test_png_of_other_modes_goes_through_pillow_unchanged(mode: str) -> None:
    image = photo(20, 10).convert(mode)
    assert np.array_equal(decoded(encode_image(image, "png")), np.asarray(image))


@pytest.mark.parametrize("level", [-1, 10])
def test_png_compress_level_out_of_range_is_refused(level: int) -> None:
    with pytest.raises(ValueError, match="png_compress_level"):
        encode_image(photo(), "png", png_compress_level=level)
    with pytest.raises(ValueError, match="png_compress_level"):
        Settings(png_compress_level=level)


def test_settings_default_to_fast_png_and_a_codec_thread_per_core() -> None:
    settings = Settings()
    assert settings.png_compress_level == DEFAULT_PNG_COMPRESS_LEVEL == 1
    assert settings.codec_threads >= 1


def reference_chroma(gray: Image.Image, rgb: np.ndarray, saturation: float) -> np.ndarray:
    """The merge written plainly over (H, W, 3) arrays, as it was before it worked in place."""
    small = Image.fromarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
    _, cb, cr = small.convert("YCbCr").split()
    cb = (np.asarray(cb.resize(gray.size, Image.Resampling.BICUBIC), np.float32) - 128.0) * saturation
    cr = (np.asarray(cr.resize(gray.size, Image.Resampling.BICUBIC), np.float32) - 128.0) * saturation
    luma = np.asarray(gray, np.float32)[..., None]
    offsets = np.stack([1.402 * cr, -0.344136 * cb - 0.714136 * cr, 1.772 * cb], axis=-1)
    headroom = np.where(offsets > 0, 255.0 - luma, luma)
    with np.errstate(divide="ignore", invalid="ignore"):
        limits = np.where(np.abs(offsets) > 1e-6, headroom / np.abs(offsets), np.inf)
    scale = np.clip(limits.min(axis=-1), 0.0, 1.0)[..., None]
    return np.clip(luma + offsets * scale + 0.5, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("size", "saturation"), [((32, 32), 1.0), ((53, 20), 1.0), ((7, 90), 2.0), ((32, 32), 0.4), ((40, 30), 0.0)]
)
def test_chroma_merge_gives_the_plain_reference_pixels(size: tuple[int, int], saturation: float) -> None:
    rng = np.random.default_rng(sum(size))
    gray = Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8), "L")
    rgb = rng.random((32, 32, 3), dtype=np.float32)  # (32, 32, 3): the model's colour at its own size
    assert np.array_equal(np.asarray(apply_chroma(gray, rgb, saturation)), reference_chroma(gray, rgb, saturation))


def test_chroma_merge_in_strips_gives_the_same_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    gray = Image.fromarray(rng.integers(0, 256, (101, 64), dtype=np.uint8), "L")  # (H, W)
    rgb = rng.random((32, 32, 3), dtype=np.float32)
    monkeypatch.setattr(imaging, "CHROMA_STRIP_PIXELS", 64 * 10)  # strips of 10 rows, the last one short
    assert np.array_equal(np.asarray(apply_chroma(gray, rgb, 1.5)), reference_chroma(gray, rgb, 1.5))


def test_model_input_at_the_model_size_is_the_photo_unresized() -> None:
    gray = photo(32, 32, "L")
    assert np.array_equal(model_input(gray, 32)[..., 0], np.asarray(gray, np.float32) / 255.0)
