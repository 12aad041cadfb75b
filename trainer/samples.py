"""Picture grids: gray | model | truth, one photo per row, saved as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

GAP = 4  # pixels between tiles
LABEL_HEIGHT = 14


def to_image(array: np.ndarray) -> Image.Image:
    """A float array in [0, 1], ``(H, W, 1)`` or ``(H, W, 3)``, as an 8-bit PIL image."""
    pixels = np.clip(np.asarray(array) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels[..., 0], "L") if pixels.shape[-1] == 1 else Image.fromarray(pixels, "RGB")


def save_grid(rows: Sequence[Sequence[Image.Image]], path: Path, labels: Sequence[str] = ()) -> Path:
    """Tile ``rows`` of equally sized images into one PNG, with optional column labels on top."""
    tile_width, tile_height = rows[0][0].size
    columns = max(len(row) for row in rows)
    top = LABEL_HEIGHT if labels else 0
    grid = Image.new(
        "RGB",
        (columns * tile_width + (columns - 1) * GAP, top + len(rows) * tile_height + (len(rows) - 1) * GAP),
        "white",
    )
    draw = ImageDraw.Draw(grid)
    for column, label in enumerate(labels):
        draw.text((column * (tile_width + GAP) + 2, 1), label, fill="black")
    for row_index, row in enumerate(rows):
        for column, tile in enumerate(row):
            position = (column * (tile_width + GAP), top + row_index * (tile_height + GAP))
            grid.paste(tile.convert("RGB").resize((tile_width, tile_height)), position)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path
