"""Image processing (colorizer_core.imaging) called directly: the colour merge, the encoders and decoding."""

from __future__ import annotations

import io
import typing
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image
from service_testing import encode, photo

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
    """The merge written plainly in float over (H, W, 3) arrays: the chroma shrunk where a channel would clip."""
    ycrcb = cv2.cvtColor(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2YCrCb)
    ycrcb = cv2.resize(ycrcb, gray.size, interpolation=cv2.INTER_CUBIC)
    cr, cb = ((ycrcb[..., channel].astype(np.float32) - 128.0) * saturation for channel in (1, 2))
    luma = np.asarray(gray, np.float32)[..., None]
    offsets = np.stack([1.402 * cr, -0.344136 * cb - 0.714136 * cr, 1.772 * cb], axis=-1)
    headroom = np.where(offsets > 0, 255.0 - luma, luma)
    with np.errstate(divide="ignore", invalid="ignore"):
        limits = np.where(np.abs(offsets) > 1e-6, headroom / np.abs(offsets), np.inf)
    scale = np.clip(limits.min(axis=-1), 0.0, 1.0)[..., None]
    return np.clip(luma + offsets * scale + 0.5, 0, 255).astype(np.uint8)


def assert_within_rounding(merged: Image.Image, reference: np.ndarray) -> None:
    assert np.abs(np.asarray(merged, np.int16) - reference).max() <= 1


def random_photo_and_colour(size: tuple[int, int], seed: int) -> tuple[Image.Image, np.ndarray]:
    """Gray noise and a (32, 32, 3) colour of noise: most of its pixels leave the gamut somewhere."""
    rng = np.random.default_rng(seed)
    gray = Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8), "L")
    return gray, rng.random((32, 32, 3), dtype=np.float32)


@pytest.mark.parametrize(
    ("size", "saturation"), [((32, 32), 1.0), ((53, 20), 1.0), ((7, 90), 2.0), ((32, 32), 0.4), ((40, 30), 0.0)]
)
def test_chroma_merge_gives_the_plain_reference_pixels(size: tuple[int, int], saturation: float) -> None:
    gray, rgb = random_photo_and_colour(size, seed=sum(size))
    assert_within_rounding(apply_chroma(gray, rgb, saturation), reference_chroma(gray, rgb, saturation))


@pytest.mark.parametrize("saturation", [0.5, 1.0, 2.0])
def test_chroma_merge_keeps_the_photos_luminance(saturation: float) -> None:
    gray, rgb = random_photo_and_colour((64, 48), seed=3)
    merged = np.asarray(apply_chroma(gray, rgb, saturation), np.float32)
    luma = merged @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(luma - np.asarray(gray)).max() <= 0.5 + 1e-3


def test_chroma_merge_redoes_clipped_pixels_a_bounded_number_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    gray, rgb = random_photo_and_colour((64, 101), seed=7)
    monkeypatch.setattr(imaging, "CHROMA_STRIP_PIXELS", 100)  # many small chunks, the last one short
    assert_within_rounding(apply_chroma(gray, rgb, 1.5), reference_chroma(gray, rgb, 1.5))


def test_model_input_at_the_model_size_is_the_photo_unresized() -> None:
    gray = photo(32, 32, "L")
    assert np.array_equal(model_input(gray, 32)[..., 0], np.asarray(gray, np.float32) / 255.0)


# Decoding: one path for the service (luminance) and the dataset builder (colour).


def transparent_red(mode: str) -> Image.Image:
    return Image.new("RGBA", (8, 8), (255, 0, 0, 0)).convert(mode)


def palette_with_transparency() -> Image.Image:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.info["transparency"] = 0
    return image


def luminance(rgb: tuple[int, int, int]) -> int:
    return Image.new("RGB", (1, 1), rgb).convert("L").getpixel((0, 0))


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize(
    ("image", "rgb"),
    [
        (transparent_red("RGBA"), (255, 255, 255)),
        (transparent_red("LA"), (255, 255, 255)),
        (palette_with_transparency(), (255, 255, 255)),
        (Image.new("L", (8, 8), 100), (100, 100, 100)),
        (Image.new("1", (8, 8), 1), (255, 255, 255)),
        (Image.new("CMYK", (8, 8), (0, 255, 255, 0)), (255, 0, 0)),
        (Image.fromarray(np.full((8, 8), 65535, np.uint16)), (255, 255, 255)),
        (Image.fromarray(np.full((8, 8), 32896, np.uint16)), (128, 128, 128)),
        (Image.fromarray(np.full((8, 8), 0.5, np.float32)), (128, 128, 128)),  # float: 0 to 1, or to its peak
    ],
    ids=["rgba", "la", "palette-transparency", "gray", "1-bit", "cmyk", "16-bit-white", "16-bit-mid", "float"],
)
def test_every_mode_becomes_8_bit_with_transparency_on_white(image: Image.Image, rgb: tuple, mode: str) -> None:
    converted, conversion = imaging.to_8bit(image, mode)
    assert (converted.mode, converted.size) == (mode, image.size)
    assert converted.getpixel((0, 0)) == (rgb if mode == "RGB" else luminance(rgb))
    if image.mode == mode:
        assert conversion is None
    else:
        assert image.mode in conversion and conversion.endswith(f"to {mode}")


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_an_image_already_in_the_mode_is_kept_as_it_is(mode: str) -> None:
    image = photo(8, 8, mode)
    assert imaging.to_8bit(image, mode) == (image, None)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_decoding_turns_exif_rotated_photos_upright_and_says_so(mode: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    decoded = imaging.decode_photo(encode(photo(40, 30), "JPEG", exif=exif), mode=mode)
    assert (decoded.image.mode, decoded.image.size, decoded.format) == (mode, (30, 40), "JPEG")
    assert decoded.conversions[0] == "turned upright (EXIF orientation 6)"


@pytest.mark.parametrize(
    ("data", "formats", "kind"),
    [
        (b"", imaging.ACCEPTED_FORMATS, "empty_file"),
        (b"Dear service, please colorize me.", imaging.ACCEPTED_FORMATS, "not_an_image"),
        (encode(photo(32, 32), "ICO"), imaging.ACCEPTED_FORMATS, "unsupported_format"),
        (encode(photo(8, 8), "GIF"), {"PNG", "JPEG"}, "unsupported_format"),
        (encode(photo(64, 48), "JPEG")[:300], imaging.ACCEPTED_FORMATS, "corrupt_image"),
        (encode(photo(101, 100)), imaging.ACCEPTED_FORMATS, "too_many_pixels"),  # one row over max_pixels
    ],
    ids=["empty", "text", "ico", "outside-formats", "truncated", "over-max-pixels"],
)
def test_decoding_refuses_a_bad_file_with_its_kind(data: bytes, formats: set[str], kind: str) -> None:
    with pytest.raises(imaging.BadImage) as refused:
        imaging.decode_photo(data, mode="L", max_pixels=100 * 100, formats=formats)
    assert refused.value.kind == kind
    assert refused.value.message


@pytest.mark.parametrize("action", ["error", "ignore"])
@pytest.mark.parametrize("over", [1, 2])  # over Pillow's limit, where it warns; over twice it, where it raises
def test_images_over_pillows_own_limit_are_refused_whatever_the_warning_filters(
    monkeypatch: pytest.MonkeyPatch, action: str, over: int
) -> None:
    image = photo(40, 30)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 30 // over - 1)
    with warnings.catch_warnings():  # this test's own filters; decoding must work under any
        warnings.simplefilter(action, Image.DecompressionBombWarning)
        with pytest.raises(imaging.BadImage) as refused:
            imaging.decode_photo(encode(image), mode="L", max_pixels=10**9)
    assert refused.value.kind == "too_many_pixels"


def test_decoding_leaves_the_process_warning_filters_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Filters are process-wide: changing them while another thread decodes would change that thread's too."""
    filters_seen_by_pillow = []
    pillow_open = Image.open

    def open_and_look(*args: object, **kwargs: object) -> Image.Image:
        filters_seen_by_pillow.append(list(warnings.filters))
        return pillow_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", open_and_look)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 30 - 1)  # so it would warn
    for data in (encode(photo(20, 10)), encode(photo(40, 30))):
        try:
            imaging.decode_photo(data, mode="L", max_pixels=10**9)
        except imaging.BadImage:
            pass
    assert filters_seen_by_pillow == [list(warnings.filters)] * 2


def test_each_output_format_is_answered_with_its_media_type() -> None:
    for name, media_type in imaging.MEDIA_TYPES.items():
        with Image.open(io.BytesIO(encode_image(photo(), name))) as image:
            assert image.get_format_mimetype() == media_type
    assert typing.get_args(imaging.OutputFormat) == tuple(imaging.MEDIA_TYPES) == tuple(imaging.OUTPUT_FORMATS)


def test_file_suffixes_are_the_usual_names_of_each_format() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"} <= imaging.file_suffixes(
        imaging.ACCEPTED_FORMATS
    )
    assert imaging.file_suffixes({"PNG"}) & {".jpg", ".gif", ".tif"} == set()


def test_to_grayscale_gives_an_image_that_outlives_its_file() -> None:
    with Image.open(io.BytesIO(encode(photo(8, 8, "L")))) as opened:
        gray = imaging.to_grayscale(opened)
    assert np.array_equal(np.asarray(gray), np.asarray(photo(8, 8, "L")))
