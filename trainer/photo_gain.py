"""A chroma gain for each photo, picked from what the frozen COCO backbone sees in it.

One gain for every photo is a compromise: the colour the model is sure of is right in some photos
(skies, faces, foliage) and wrong in others (close-up leaves painted orange, near-black photos
painted blue), and the photo's own statistics barely tell which. The scene encoder's features,
averaged over the photo, do: a ridge regression from them predicts the ΔE2000 each gain would
give a photo, and the exported graph colours each photo at the gain whose prediction, less
``lean`` x gain (a lean towards colour, chosen on validation like the other decoding choices), is
lowest. The regression is fitted on fold runs' held-out photos (``runs.fit_photo_gain``), whose
collections their generators never saw, as the photos served will be.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from colorizer_core.metadata import PhotoGainChoice

GAINS = (0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
LEANS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)  # ΔE2000 a photo may give up per unit of gain
RIDGE_STRENGTH = 1000.0  # on standardized features, from a few hundred photos per fit


def with_scene_summary(generator: keras.Model) -> keras.Model:
    """The generator with a second output: its scene encoder's features at 1/16 and 1/32,
    averaged over the photo ``(B, F)``, computed once for both outputs."""
    try:
        encoder = generator.get_layer("scene_encoder")
    except ValueError:
        raise ValueError("A gain per photo is picked from the COCO backbone's features: train with --scene-encoder.") from None
    pooled = [layers.GlobalAveragePooling2D(name=f"scene_pool{index}")(feature) for index, feature in enumerate(encoder.output[:2])]
    summary = layers.Concatenate(name="scene_summary", dtype="float32")(pooled)
    return keras.Model(generator.inputs, [generator.output, summary], name="generator_and_scene")


@dataclass(frozen=True)
class PhotoGainFit:
    """A fitted choice of gain per photo, as ``fit-photo-gain`` writes it and ``export --photo-gain`` reads it.

    ``weights`` ``(F, K)`` and ``bias`` ``(K,)`` predict each of the K ``gains``' ΔE2000 from a
    photo's scene summary (its standardization folded in). ``chroma_threshold`` is the decoding they
    were fitted under; ``fitted_on`` names the runs (folder names only).
    """

    gains: tuple[float, ...]
    lean: float
    chroma_threshold: float
    weights: np.ndarray
    bias: np.ndarray
    fitted_on: tuple[str, ...] = ()

    def choose(self, summaries: np.ndarray) -> np.ndarray:
        """Index into ``gains`` of each photo's gain."""
        return np.argmin(summaries @ self.weights + self.bias - self.lean * np.asarray(self.gains), axis=-1)

    def with_lean(self, lean: float) -> PhotoGainFit:
        return PhotoGainFit(self.gains, lean, self.chroma_threshold, self.weights, self.bias, self.fitted_on)

    def write(self, path: Path) -> Path:
        document = {**asdict(self), "weights": self.weights.tolist(), "bias": self.bias.tolist()}
        path.write_text(json.dumps(document, indent=1) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> PhotoGainFit:
        document = json.loads(Path(path).read_text())
        try:
            return cls(
                gains=tuple(document["gains"]),
                lean=document["lean"],
                chroma_threshold=document["chroma_threshold"],
                weights=np.asarray(document["weights"], np.float32),
                bias=np.asarray(document["bias"], np.float32),
                fitted_on=tuple(document["fitted_on"]),
            )
        except KeyError as missing:
            raise ValueError(f"{path} is not written by `fit-photo-gain`: it has no {missing}.") from None


def fit_ridge(
    summaries: np.ndarray, delta_e: np.ndarray, *, gains: Sequence[float], chroma_threshold: float, strength: float = RIDGE_STRENGTH
) -> PhotoGainFit:
    """Ridge regressions from ``summaries`` ``(N, F)`` to ``delta_e`` ``(N, K)``, one per gain, on
    standardized features with an unpenalized intercept; returned with the standardization folded in
    and a lean of 0."""
    mean, spread = summaries.mean(0), summaries.std(0) + 1e-6
    standardized = (summaries - mean) / spread
    centered = delta_e - delta_e.mean(0)
    gram = standardized.T @ standardized + strength * np.eye(standardized.shape[1])
    scaled_weights = np.linalg.solve(gram, standardized.T @ centered)  # (F, K); the intercept is delta_e's mean
    weights = scaled_weights / spread[:, None]
    bias = delta_e.mean(0) - mean @ weights
    return PhotoGainFit(tuple(gains), 0.0, chroma_threshold, weights.astype(np.float32), bias.astype(np.float32))


def cross_fitted_choices(
    summaries: np.ndarray, delta_e: np.ndarray, groups: np.ndarray, *, gains: Sequence[float], leans: Sequence[float], strength: float = RIDGE_STRENGTH
) -> dict[float, np.ndarray]:
    """For each lean, the gain index each photo would get from a fit on the other ``groups``' photos
    only (each group a fold run's held-out collections), so no photo's gain comes from its own collection."""
    choices = {lean: np.zeros(len(summaries), int) for lean in leans}
    for group in np.unique(groups):
        held_out = groups == group
        fit = fit_ridge(summaries[~held_out], delta_e[~held_out], gains=gains, chroma_threshold=0.0, strength=strength)
        for lean, chosen in choices.items():
            chosen[held_out] = fit.with_lean(lean).choose(summaries[held_out])
    return choices


class PhotoGain(tf.Module):
    """The fitted choice in the exported graph: scene summaries ``(B, F)`` to each photo's gain ``(B,)``.

    The regression's weights are variables, so an exported version carries them and can be exported again.
    """

    def __init__(
        self, gains: Sequence[float], lean: float, weights: np.ndarray, bias: np.ndarray, fitted_on: Sequence[str] = ()
    ) -> None:
        super().__init__(name="photo_gain")
        self.choice = PhotoGainChoice(gains=list(gains), lean=lean, fitted_on=list(fitted_on))  # as colorizer.json records it
        self.weights = tf.Variable(weights, dtype=tf.float32, trainable=False, name="weights")
        self.bias = tf.Variable(bias, dtype=tf.float32, trainable=False, name="bias")

    @classmethod
    def from_fit(cls, fit: PhotoGainFit) -> PhotoGain:
        return cls(fit.gains, fit.lean, fit.weights, fit.bias, fit.fitted_on)

    @classmethod
    def to_restore(cls, choice: PhotoGainChoice, generator: keras.Model) -> PhotoGain:
        """Zero weights, shaped for ``generator``'s scene summary, for an exported version's to be read into."""
        features = with_scene_summary(generator).outputs[1].shape[-1]
        shape = (features, len(choice.gains))
        return cls(choice.gains, choice.lean, np.zeros(shape, np.float32), np.zeros(shape[1:], np.float32), choice.fitted_on)

    def __call__(self, summaries: tf.Tensor) -> tf.Tensor:
        gains = tf.constant(self.choice.gains, tf.float32)
        predicted_delta_e = tf.matmul(tf.cast(summaries, tf.float32), self.weights) + self.bias
        return tf.gather(gains, tf.argmin(predicted_delta_e - self.choice.lean * gains, axis=-1))
