"""Real photos with a few bytes changed where parsers are weakest: the EXIF block, and frames after the first."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

REAL_PHOTOS = Path(__file__).resolve().parents[2] / "docs" / "results-grid.png"  # photos the model was scored on
EXIF_MARKER = b"Exif\x00\x00"
ORIENTATION, MAKE, DATETIME, EXIF_IFD, EXPOSURE_TIME = 0x0112, 0x010F, 0x0132, 0x8769, 0x829A
BYTES_CHANGED = (1, 2, 4, 8)  # per mutant, one of these many bytes
CROP = 96  # side of the crops taken from the real photos


def real_crops(count: int) -> list[Image.Image]:
    with Image.open(REAL_PHOTOS) as grid:
        grid = grid.convert("RGB")
        step = max(1, (grid.width - CROP) // count)
        return [grid.crop((i * step, 0, i * step + CROP, CROP)) for i in range(count)]


def jpeg_with_exif() -> bytes:
    """A real photo as a camera's JPEG: rotated by EXIF, with an EXIF sub-IFD."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "Colorizer test camera"
    exif[DATETIME] = "2020:01:01 12:00:00"
    exif.get_ifd(EXIF_IFD)[EXPOSURE_TIME] = 0.01
    buffer = io.BytesIO()
    real_crops(1)[0].save(buffer, "JPEG", exif=exif.tobytes(), quality=90)
    return buffer.getvalue()


def animations() -> dict[str, bytes]:
    """The same three real frames as an animated GIF, PNG (APNG) and WebP."""
    frames = real_crops(3)
    files = {}
    for fmt in ("GIF", "PNG", "WEBP"):
        buffer = io.BytesIO()
        frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
        files[fmt.lower()] = buffer.getvalue()
    return files


def mutants(data: bytes, start: int, end: int, count: int, seed: int) -> Iterator[bytes]:
    """``count`` copies of ``data``, each with a few random bytes in ``[start, end)`` replaced."""
    rng = random.Random(seed)
    for _ in range(count):
        mutant = bytearray(data)
        for _ in range(rng.choice(BYTES_CHANGED)):
            mutant[rng.randrange(start, end)] = rng.randrange(256)
        yield bytes(mutant)


def exif_mutants(count: int, seed: int) -> list[bytes]:
    data = jpeg_with_exif()
    start = data.index(EXIF_MARKER) + len(EXIF_MARKER)
    length = int.from_bytes(data[start - len(EXIF_MARKER) - 2 : start - len(EXIF_MARKER)], "big")  # APP1's
    return list(mutants(data, start, start + length - len(EXIF_MARKER) - 2, count, seed))


def animation_mutants(count: int, seed: int) -> list[tuple[str, bytes]]:
    """Mutants of each animation, changed in their second half (the frames after the first)."""
    found = []
    for offset, (fmt, data) in enumerate(animations().items()):
        found += [(fmt, mutant) for mutant in mutants(data, len(data) // 2, len(data), count, seed + offset)]
    return found
