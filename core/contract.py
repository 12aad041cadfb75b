"""The model contract shared by the trainer (which writes it) and the service (which reads it).

Layout is TensorFlow Serving's: ``<root>/<integer version>/`` holds a SavedModel whose
``serving_default`` signature maps ``gray`` float32 ``(B, H, W, 1)`` in [0, 1] to ``rgb`` float32
``(B, H, W, 3)`` in [0, 1], with ``colorizer.json`` beside ``saved_model.pb`` (its fields: ``metadata.py``).

Models that take colour hints (``"hints": true`` in ``colorizer.json``) have a second input,
``hints`` float32 ``(B, H, W, 4)`` at the same size as ``gray``: channels 0-2 a hint's colour as sRGB
in [0, 1], channel 3 a mask, 1 where a hint is and 0 elsewhere (the colour is ignored there). Only a
hint's chroma is used; the photo keeps its own luminance. A hint is painted as a square of
``HINT_PATCH`` pixels (at the model's input size) centred on the clicked point, as in training.
Models exported before hints existed take ``gray`` alone; they still serve, without hints.
"""

from __future__ import annotations

from pathlib import Path

SIGNATURE = "serving_default"
INPUT_KEY = "gray"
OUTPUT_KEY = "rgb"
HINTS_KEY = "hints"
HINT_CHANNELS = 4  # sRGB colour + mask
HINT_MASK_CHANNEL = 3  # 1 where a hint is painted, else 0
HINT_PATCH = 5  # side, in model-input pixels, of the square each hint is painted as
METADATA_FILE = "colorizer.json"  # read and written by metadata.ModelMetadata
SAVED_MODEL_FILE = "saved_model.pb"
VARIABLES_INDEX_FILE = "variables/variables.index"
# What a version folder holds once its copy is complete (an export renames it into place whole,
# but a copy by hand or by rsync fills it file by file).
REQUIRED_FILES = (SAVED_MODEL_FILE, VARIABLES_INDEX_FILE, METADATA_FILE)


def versions(root: Path) -> list[int]:
    """The complete model versions under ``root``, oldest first.

    A folder counts only once it holds both the SavedModel and its metadata, so a half-written
    export (which lives under a temporary, non-integer name until it is renamed) is never listed.
    """
    if not root.is_dir():
        return []
    found = [
        int(child.name)
        for child in root.iterdir()
        if child.name.isdigit()
        and (child / SAVED_MODEL_FILE).is_file()
        and (child / METADATA_FILE).is_file()
    ]
    return sorted(found)


def latest_version_dir(root: Path) -> Path:
    """The folder of the highest complete version under ``root``."""
    found = versions(root)
    if not found:
        raise FileNotFoundError(f"No exported model under {root} (expected {root}/<version>/{SAVED_MODEL_FILE})")
    return root / str(found[-1])


def resolve_model_dir(path: Path) -> Path:
    """Accept either a version folder or a root of versions; return the version folder."""
    if (path / SAVED_MODEL_FILE).is_file():
        return path
    return latest_version_dir(path)


def candidate_dirs(path: Path) -> list[Path]:
    """Every folder that may hold a version, newest first: ``path`` itself if it is one, else its integer-named children.

    Unlike ``versions``, this lists folders still being copied: see ``missing_files``.
    """
    if (path / SAVED_MODEL_FILE).is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted((child for child in path.iterdir() if child.name.isdigit() and child.is_dir()), key=version_of)[::-1]


def version_of(version_dir: Path) -> int:
    """A version folder's number (0 for a version folder served by a name that is not one)."""
    return int(version_dir.name) if version_dir.name.isdigit() else 0


def missing_files(version_dir: Path) -> list[str]:
    """The ``REQUIRED_FILES`` that ``version_dir`` does not hold (yet)."""
    return [name for name in REQUIRED_FILES if not (version_dir / name).is_file()]
