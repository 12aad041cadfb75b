"""Load an exported colorizer (a SavedModel per the contract) and run it on batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from colorizer_core import contract
from colorizer_core.imaging import MIN_RENDER_SIZE, BadOptions
from colorizer_core.metadata import InvalidMetadata, ModelMetadata

PROBE_BATCH = 2  # more than one row, so a model that mixes up its batch axis fails the probe
# How far outside [0, 1] a probe's output may stray (float rounding in the model's last layer).
PROBE_RANGE_TOLERANCE = 1e-3


class UnusableModel(ValueError):
    """A version that loaded but breaks the contract. Its message names no path: it is shown to clients."""


@dataclass
class LoadedModel:
    """A loaded model version: ``predict`` maps ``(B, S, S, 1)`` gray (and hints) to ``(B, S, S, 3)`` RGB."""

    path: Path
    version: int
    metadata: ModelMetadata
    _signature: Any = field(repr=False)

    @property
    def native_size(self) -> int:
        return self.metadata.size

    @property
    def takes_hints(self) -> bool:
        """Has the contract's second input, ``hints`` (``load_model`` checked the SavedModel agrees)."""
        return self.metadata.hints

    @property
    def accepts_other_sizes(self) -> bool:
        return self.metadata.accepts_other_sizes

    @property
    def size_multiple(self) -> int:
        """A side other than the native size must be a multiple of this."""
        return self.metadata.size_multiple

    def predict(self, gray: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """RGB for a gray batch; ``hints`` ``(B, S, S, 4)`` only for a model that takes them (default: none)."""
        inputs = {contract.INPUT_KEY: tf.convert_to_tensor(gray, tf.float32)}
        if self.takes_hints:
            if hints is None:
                hints = np.zeros((*gray.shape[:-1], contract.HINT_CHANNELS), np.float32)
            inputs[contract.HINTS_KEY] = tf.convert_to_tensor(hints, tf.float32)
        elif hints is not None:
            raise ValueError(f"Model version {self.version} takes no hints. Received: hints of shape {hints.shape}")
        outputs = self._signature(**inputs)
        return np.clip(outputs[contract.OUTPUT_KEY].numpy(), 0.0, 1.0)

    def render_size(self, requested: int | None, *, largest: int) -> int:
        """The side the model sees a photo at: ``requested`` rounded to the nearest ``size_multiple``.

        ``None`` is the native size. Raises ``BadOptions`` outside ``MIN_RENDER_SIZE..largest``, or
        for any other than the native size when the model takes only that.
        """
        if requested is None:
            return self.native_size
        if not MIN_RENDER_SIZE <= requested <= largest:
            raise BadOptions(
                "render_size_out_of_range",
                f"render_size must be from {MIN_RENDER_SIZE} to {largest}. Received: {requested}",
            )
        size = max(self.size_multiple, round(requested / self.size_multiple) * self.size_multiple)
        if size != self.native_size and not self.accepts_other_sizes:
            raise BadOptions(
                "render_size_unsupported",
                f"Model version {self.version} sees photos only at {self.native_size}x{self.native_size}. "
                f"Received: render_size={requested}",
            )
        return size

    def probe(self) -> None:
        """Raise ``UnusableModel`` unless a gray ramp in [0, 1) gives ``rgb`` float32 ``(B, S, S, 3)``, finite, in [0, 1]."""
        size = self.native_size
        ramp = (np.arange(size * size, dtype=np.float32) / (size * size)).reshape(1, size, size, 1)
        inputs = {contract.INPUT_KEY: tf.convert_to_tensor(np.repeat(ramp, PROBE_BATCH, axis=0))}
        if self.takes_hints:
            inputs[contract.HINTS_KEY] = tf.zeros((PROBE_BATCH, size, size, contract.HINT_CHANNELS), tf.float32)
        outputs = self._signature(**inputs)
        if contract.OUTPUT_KEY not in outputs:
            raise UnusableModel(f"probe: the model has no {contract.OUTPUT_KEY!r} output (it has {sorted(outputs)})")
        output = outputs[contract.OUTPUT_KEY]
        expected = (PROBE_BATCH, size, size, 3)
        if output.dtype != tf.float32 or tuple(output.shape) != expected:
            raise UnusableModel(
                f"probe: output is {output.dtype.name} {tuple(output.shape)}; the contract says float32 {expected}"
            )
        values = output.numpy()
        if not np.isfinite(values).all():
            raise UnusableModel("probe: output has NaN or infinite values")
        low, high = float(values.min()), float(values.max())
        if low < -PROBE_RANGE_TOLERANCE or high > 1.0 + PROBE_RANGE_TOLERANCE:
            raise UnusableModel(f"probe: output spans [{low:.3g}, {high:.3g}]; the contract says [0, 1]")

    def warm_up(self, batch_sizes: tuple[int, ...] = (1,)) -> None:
        """Run each batch size once so the first real request does not pay for graph setup."""
        for batch_size in batch_sizes:
            self.predict(np.zeros((batch_size, self.native_size, self.native_size, 1), np.float32))


def load_model(path: Path) -> LoadedModel:
    """Load ``path`` (a version folder, or a root whose highest complete version is taken).

    Raises ``UnusableModel`` for metadata or inputs that break the contract; TensorFlow's own
    errors for a SavedModel it cannot read.
    """
    version_dir = contract.resolve_model_dir(Path(path))
    try:
        metadata = ModelMetadata.read(version_dir)
    except InvalidMetadata as error:
        raise UnusableModel(str(error)) from None
    signatures = tf.saved_model.load(str(version_dir)).signatures
    if contract.SIGNATURE not in signatures:
        raise UnusableModel(f"the SavedModel has no {contract.SIGNATURE!r} signature")
    signature = signatures[contract.SIGNATURE]
    if metadata.hints and contract.HINTS_KEY not in signature.structured_input_signature[1]:
        raise UnusableModel(f"{contract.METADATA_FILE} says hints, but the SavedModel has no hints input")
    return LoadedModel(path=version_dir, version=contract.version_of(version_dir), metadata=metadata, _signature=signature)
