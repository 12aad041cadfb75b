"""The colorize pipeline: decode, prepare the model's input, put its colour on the photo, encode.

Shared by the HTTP routes, the offline ``colorize`` CLI and the trainer's ``evaluate``, so all three
produce the same pixels. The model sees the photo at its render size (by default its native size),
with the user's colour hints painted at that size; its chroma is scaled back to the photo's size,
times the asked-for saturation, and joined with the photo's own luminance, so no detail is lost.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from service import contract
from service.hints import Hint

# ITU-R BT.601, the luma PIL's convert("L") and YCbCr use: Y = 0.299 R + 0.587 G + 0.114 B.
# RGB from (Y, Cb, Cr) with Cb, Cr centred on zero:
_R_FROM_CR = 1.402
_G_FROM_CB = -0.344136
_G_FROM_CR = -0.714136
_B_FROM_CB = 1.772

OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "BMP", "TIFF", "MPO", "GIF"})
MIN_RENDER_SIZE = 32  # the smallest side a photo may be rendered at; the largest is a setting
MAX_SATURATION = 2.0
# Pixels the chroma merge works on at a time: its float32 temporaries take ~100 bytes a pixel.
CHROMA_STRIP_PIXELS = 1 << 18


@dataclass(frozen=True)
class ColorizeOptions:
    """What a user may ask for beyond the photo itself."""

    hints: tuple[Hint, ...] = ()
    saturation: float = 1.0  # scales the predicted chroma: 0 gray, 1 as predicted, up to MAX_SATURATION
    render_size: int | None = None  # the side the model sees the photo at; None: its native size


class BadImage(ValueError):
    """An upload that cannot be colorized. ``kind`` is a short machine-readable reason."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class BadOptions(ValueError):
    """Options this photo or model cannot take (a hint outside the photo, a render size it cannot use)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def decode_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Decode an upload into an upright grayscale (``L``) image, or raise ``BadImage``.

    Colour uploads are reduced to their luminance; CMYK, 16-bit, palette and alpha images are
    converted; EXIF orientation is applied; animated images give their first frame.
    """
    if not data:
        raise BadImage("empty_file", "The uploaded file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED_FORMATS:
                raise BadImage(
                    "unsupported_format",
                    f"Unsupported image format {image.format}; send PNG, JPEG, WebP, BMP or TIFF.",
                )
            width, height = image.size
            if width * height > max_pixels:
                raise BadImage(
                    "too_many_pixels",
                    f"The image has {width}x{height} = {width * height} pixels; the limit is {max_pixels}.",
                )
            image.seek(0)  # first frame of an animation
            image.load()
            return to_grayscale(_upright(image))
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage("not_an_image", "The file is not an image this service can read.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("too_many_pixels", "The image declares more pixels than this service accepts.") from None
    except Exception as error:  # the decoders raise many kinds on crafted bytes; all mean the same to a client
        raise BadImage("corrupt_image", f"The image is truncated or corrupt: {error}") from None


def _upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says; as it is when that EXIF block is unreadable."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a corrupt EXIF block (struct.error and others): the pixels are still good
        return image


def to_grayscale(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit luminance, compositing transparency onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit integer: scale the full range down to 8 bits rather than clipping at 255.
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        peak = max(array.max(initial=0.0), 1.0)
        return Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    if image.mode == "CMYK":
        image = image.convert("RGB")
    return image.convert("L")


def model_input(gray: Image.Image, size: int) -> np.ndarray:
    """The model's input for one photo: ``(size, size, 1)`` float32 in [0, 1]."""
    resized = gray.resize((size, size), Image.Resampling.BICUBIC)
    return (np.asarray(resized, dtype=np.float32) / 255.0)[..., None]


def hint_map(hints: Sequence[Hint], photo_size: tuple[int, int], size: int) -> np.ndarray:
    """The model's ``hints`` input for one photo: ``(size, size, 4)`` float32, sRGB colour + mask.

    A hint at (x, y) in the photo's pixels lands at the same relative place in the model's
    ``size`` x ``size`` input, painted as a ``HINT_PATCH``-pixel square centred there (cut at the
    border); a later hint paints over an earlier one. Raises ``BadOptions`` for a hint outside the photo.
    """
    check_hints_inside(hints, photo_size)
    width, height = photo_size
    painted = np.zeros((size, size, contract.HINT_CHANNELS), np.float32)
    half = contract.HINT_PATCH // 2
    for hint in hints:
        column = min(int(hint.x * size / width), size - 1)
        row = min(int(hint.y * size / height), size - 1)
        painted[max(row - half, 0) : row + half + 1, max(column - half, 0) : column + half + 1] = (*hint.rgb, 1.0)
    return painted


def check_hints_inside(hints: Sequence[Hint], photo_size: tuple[int, int]) -> None:
    """Raise ``BadOptions`` for the first hint outside the photo (``0 <= x < width``, ``0 <= y < height``)."""
    width, height = photo_size
    for hint in hints:
        if not (0 <= hint.x < width and 0 <= hint.y < height):
            raise BadOptions(
                "hint_outside_image", f"The hint at ({hint.x:g}, {hint.y:g}) is outside the {width}x{height} photo."
            )


def apply_chroma(gray: Image.Image, rgb: np.ndarray, saturation: float = 1.0) -> Image.Image:
    """Join the model's colour with the photo's own luminance, at the photo's size.

    ``rgb`` is the model's ``(h, w, 3)`` output in [0, 1] at any size. Its chroma (Cb, Cr) is
    resized to the photo and scaled by ``saturation``, then each pixel's chroma is shrunk just enough
    that no channel clips, so the result's luminance equals the input's to within rounding. The
    float work goes in strips of rows, so its memory does not grow with the photo.
    """
    small = Image.fromarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
    _, cb, cr = small.convert("YCbCr").split()
    cb_full = np.asarray(cb.resize(gray.size, Image.Resampling.BICUBIC))  # (H, W) uint8
    cr_full = np.asarray(cr.resize(gray.size, Image.Resampling.BICUBIC))
    luma_full = np.asarray(gray)
    width, height = gray.size
    colour = np.empty((height, width, 3), np.uint8)
    rows = max(1, CHROMA_STRIP_PIXELS // width)
    for top in range(0, height, rows):
        strip = slice(top, top + rows)
        colour[strip] = _join_chroma(luma_full[strip], cb_full[strip], cr_full[strip], saturation)
    return Image.fromarray(colour, "RGB")


def _join_chroma(luma_u8: np.ndarray, cb_u8: np.ndarray, cr_u8: np.ndarray, saturation: float) -> np.ndarray:
    """RGB ``(h, w, 3)`` uint8 from luma and chroma ``(h, w)`` uint8 (chroma centred on 128)."""
    cb = (cb_u8.astype(np.float32) - 128.0) * saturation
    cr = (cr_u8.astype(np.float32) - 128.0) * saturation
    luma = luma_u8.astype(np.float32)

    offsets = np.stack(
        [_R_FROM_CR * cr, _G_FROM_CB * cb + _G_FROM_CR * cr, _B_FROM_CB * cb], axis=-1
    )  # (h, w, 3): each channel's distance from the luma
    headroom = np.where(offsets > 0, 255.0 - luma[..., None], luma[..., None])
    with np.errstate(divide="ignore", invalid="ignore"):
        limits = np.where(np.abs(offsets) > 1e-6, headroom / np.abs(offsets), np.inf)
    # limits.min(axis=-1), written out: numpy is many times slower reducing an axis of length 3.
    tightest = np.minimum(np.minimum(limits[..., 0], limits[..., 1]), limits[..., 2])
    scale = np.clip(tightest, 0.0, 1.0)[..., None]
    colour = luma[..., None] + offsets * scale
    return np.clip(colour + 0.5, 0, 255).astype(np.uint8)


def encode_image(image: Image.Image, fmt: str) -> bytes:
    """Encode to ``png``, ``jpeg`` or ``webp``."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"Unknown output format {fmt!r}; choose one of {sorted(OUTPUT_FORMATS)}")
    buffer = io.BytesIO()
    # PNG: zlib's fastest level; on photos it costs a third of the default's time for about the same size.
    options = {"quality": 92} if fmt in ("jpeg", "webp") else {"compress_level": 1}
    image.save(buffer, format=OUTPUT_FORMATS[fmt], **options)
    return buffer.getvalue()


Predict = Callable[..., np.ndarray]


def colorize_images(
    grays: Sequence[Image.Image],
    predict: Predict,
    size: int,
    *,
    hints: Sequence[Hint] | None = None,
    saturation: float = 1.0,
) -> list[Image.Image]:
    """Colorize grayscale photos with ``predict`` (``(B, size, size, 1)`` to ``(B, size, size, 3)``).

    With ``hints`` (for a model that takes them; the same hints for every photo), ``predict`` also
    gets their ``(B, size, size, 4)`` maps; ``None`` calls it with the gray batch alone.
    """
    if not grays:
        return []
    batch = np.stack([model_input(gray, size) for gray in grays])
    if hints is None:
        rgb = predict(batch)
    else:
        rgb = predict(batch, np.stack([hint_map(hints, gray.size, size) for gray in grays]))
    return [apply_chroma(gray, colour, saturation) for gray, colour in zip(grays, rgb)]
