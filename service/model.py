"""Load an exported colorizer (a SavedModel per the contract) and run it on batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from service import contract


@dataclass
class LoadedModel:
    """A loaded model version: ``predict`` maps ``(B, S, S, 1)`` gray to ``(B, S, S, 3)`` RGB."""

    path: Path
    version: int
    metadata: dict[str, Any]
    native_size: int
    _signature: Any = field(repr=False)

    @property
    def takes_hints(self) -> bool:
        return contract.HINTS_KEY in self._signature.structured_input_signature[1]

    def predict(self, gray: np.ndarray) -> np.ndarray:
        inputs = {contract.INPUT_KEY: tf.convert_to_tensor(gray, tf.float32)}
        if self.takes_hints:  # no hints: the automatic colours
            inputs[contract.HINTS_KEY] = tf.zeros((*gray.shape[:3], contract.HINT_CHANNELS), tf.float32)
        outputs = self._signature(**inputs)
        return np.clip(outputs[contract.OUTPUT_KEY].numpy(), 0.0, 1.0)

    def warm_up(self, batch_sizes: tuple[int, ...] = (1,)) -> None:
        """Run each batch size once so the first real request does not pay for graph setup."""
        for batch_size in batch_sizes:
            self.predict(np.zeros((batch_size, self.native_size, self.native_size, 1), np.float32))


def load_model(path: Path) -> LoadedModel:
    """Load ``path`` (a version folder, or a root whose highest complete version is taken)."""
    version_dir = contract.resolve_model_dir(Path(path))
    metadata = contract.read_metadata(version_dir)
    loaded = tf.saved_model.load(str(version_dir))
    return LoadedModel(
        path=version_dir,
        version=int(version_dir.name) if version_dir.name.isdigit() else 0,
        metadata=metadata,
        native_size=int(metadata["size"]),
        _signature=loaded.signatures[contract.SIGNATURE],
    )
