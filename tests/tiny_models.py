"""Tiny exported colorizers for tests: SavedModels per the contract whose colours are known exactly."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path


def make_model_dir(
    tmp_path: Path,
    *,
    tint: tuple[float, float, float] | None = None,
    size: int = 32,
    version: int = 1,
    accepts_other_sizes: bool = True,
) -> Path:
    """Export a tiny colorizer per the contract to ``tmp_path/models/colorizer/<version>/``.

    Its ``rgb`` is the gray input times ``tint`` per channel (``None``: gray copied to all three
    channels), so what it predicts is known exactly. Returns the version folder.
    """
    import tensorflow as tf

    from service import contract

    class TintModel(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tint = tf.constant(tint or (1.0, 1.0, 1.0), tf.float32)  # (3,)
            side = None if accepts_other_sizes else size
            spec = tf.TensorSpec([None, side, side, 1], tf.float32, name=contract.INPUT_KEY)
            self.serve = tf.function(self._serve, input_signature=[spec])

        def _serve(self, gray: tf.Tensor) -> dict[str, tf.Tensor]:
            return {contract.OUTPUT_KEY: gray * self.tint}  # (B, H, W, 1) * (3,) -> (B, H, W, 3)

    version_dir = tmp_path / "models" / "colorizer" / str(version)
    module = TintModel()
    tf.saved_model.save(module, str(version_dir), signatures={contract.SIGNATURE: module.serve})
    metadata = {
        "format_version": 1,
        "arch": "tint" if tint else "identity",
        "size": size,
        "accepts_other_sizes": accepts_other_sizes,
        "dataset_fingerprint": "test",
        "epochs": 0,
        "metrics": {},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "train": {},
    }
    (version_dir / contract.METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    return version_dir
