"""Tiny exported colorizers for tests: SavedModels per the contract whose colours are known exactly."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path


def make_model_dir(
    tmp_path: Path,
    *,
    tint: tuple[float, float, float] | None = None,
    size: int = 32,
    version: int = 1,
    accepts_other_sizes: bool = True,
    size_multiple: int = 8,
    hints: bool = False,
) -> Path:
    """Export a tiny colorizer per the contract to ``tmp_path/models/colorizer/<version>/``.

    Its ``rgb`` is the gray input times ``tint`` per channel (``None``: gray copied to all three
    channels), so what it predicts is known exactly. With ``hints``, it also takes the contract's
    ``hints`` input and answers the hint's colour wherever the hint mask is 1. Returns the version folder.
    """
    import tensorflow as tf

    from colorizer_core import contract
    from colorizer_core.metadata import ModelMetadata

    side = None if accepts_other_sizes else size
    gray_spec = tf.TensorSpec([None, side, side, 1], tf.float32, name=contract.INPUT_KEY)
    hints_spec = tf.TensorSpec([None, side, side, contract.HINT_CHANNELS], tf.float32, name=contract.HINTS_KEY)

    class TintModel(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tint = tf.constant(tint or (1.0, 1.0, 1.0), tf.float32)  # (3,)
            self.serve = tf.function(self._serve, input_signature=[gray_spec])

        def _serve(self, gray: tf.Tensor) -> dict[str, tf.Tensor]:
            return {contract.OUTPUT_KEY: gray * self.tint}  # (B, H, W, 1) * (3,) -> (B, H, W, 3)

    class HintedTintModel(TintModel):
        def __init__(self) -> None:
            super().__init__()
            self.serve = tf.function(self._serve_hinted, input_signature=[gray_spec, hints_spec])

        def _serve_hinted(self, gray: tf.Tensor, hints: tf.Tensor) -> dict[str, tf.Tensor]:
            colour, mask = hints[..., :3], hints[..., 3:]  # (B, H, W, 3), (B, H, W, 1)
            return {contract.OUTPUT_KEY: mask * colour + (1.0 - mask) * gray * self.tint}

    version_dir = tmp_path / "models" / "colorizer" / str(version)
    module = HintedTintModel() if hints else TintModel()
    tf.saved_model.save(module, str(version_dir), signatures={contract.SIGNATURE: module.serve})
    ModelMetadata(
        arch="tint" if tint else "identity",
        size=size,
        accepts_other_sizes=accepts_other_sizes,
        size_multiple=size_multiple,
        hints=hints,
        created=datetime.now(timezone.utc).replace(microsecond=0),
    ).write(version_dir)
    return version_dir
