"""What an exported version serves, called through its SavedModel signature as the service calls it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import tensorflow as tf

from colorizer_core import contract
from colorizer_trainer import color


@cache
def _signature(version_dir: Path):
    """Loaded once per version: a version folder is never rewritten, and loading one with the backbone takes seconds."""
    return tf.saved_model.load(str(version_dir)).signatures[contract.SIGNATURE]


def serve(version_dir: Path, gray: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
    signature = _signature(Path(version_dir))
    inputs = {contract.INPUT_KEY: tf.constant(gray)}
    if contract.HINTS_KEY in signature.structured_input_signature[1]:
        inputs[contract.HINTS_KEY] = tf.constant(np.zeros((*gray.shape[:3], 4), np.float32) if hints is None else hints)
    return signature(**inputs)[contract.OUTPUT_KEY].numpy()


def served_ab(version_dir: Path, gray: np.ndarray) -> np.ndarray:
    """The (a, b) chroma, in Lab units, of what ``version_dir`` serves for ``gray``."""
    return color.rgb_to_lab(serve(version_dir, gray))[..., 1:].numpy()
