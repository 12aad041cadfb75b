"""A chroma gain for each photo, picked from what the frozen COCO backbone sees in it.

One gain for every photo is a compromise: the colour the model is sure of is right in some photos
(skies, faces, foliage) and wrong in others (close-up leaves painted orange, near-black photos
painted blue), and the photo's own statistics barely tell which. The scene encoder's features,
averaged over the photo, do: a ridge regression from them predicts the ΔE2000 each gain would
give a photo, and the exported graph colours each photo at the gain whose prediction, less
``lean`` x gain (a lean towards colour, chosen on validation like the other decoding choices), is
lowest. The regression is fitted on fold runs' held-out photos (``runs.fit_photo_gain``), whose
collections their generators never saw, as the photos served will be.

Where the generator is several U-Nets side by side, how much they disagree about a photo's colour
is a second view of whether colouring it will help: with ``doubt``, the summary also holds it, and
without ``scene`` it holds only that (three numbers that say how sure the model is, not what the
photo shows, so they mean the same in collections no fit has seen).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from colorizer_core.metadata import PhotoGainChoice
from colorizer_trainer.config import RIDGE_STRENGTH


def with_scene_summary(generator: keras.Model, *, scene: bool = True, doubt: bool = False) -> keras.Model:
    """The generator with a second output, what the gain per photo reads ``(B, F)``, computed once for
    both outputs: with ``scene``, its scene encoder's features at 1/16 and 1/32 averaged over the photo;
    with ``doubt``, then the members' doubt (``MembersDoubt``)."""
    if not (scene or doubt):
        raise ValueError("A gain per photo reads the scene, the members' doubt, or both.")
    parts = []
    if scene:
        try:
            encoder = generator.get_layer("scene_encoder")
        except ValueError:
            raise ValueError("A gain per photo read from the scene needs the COCO backbone: train with --scene-encoder.") from None
        parts += [layers.GlobalAveragePooling2D(name=f"scene_pool{index}")(feature) for index, feature in enumerate(encoder.output[:2])]
    if doubt:
        try:
            member_chroma = generator.get_layer("member_chroma").output
        except ValueError:
            raise ValueError("The members' doubt needs several U-Nets: train with --members 2 or more.") from None
        parts.append(MembersDoubt(member_chroma.shape[-1] // 2, name="members_doubt")(member_chroma))
    summary = layers.Concatenate(name="scene_summary", dtype="float32")(parts)
    return keras.Model(generator.inputs, [generator.output, summary], name="generator_and_scene")


class MembersDoubt(layers.Layer):
    """Members' chroma side by side ``(B, H, W, 2 * members)`` to how sure they are of the photo's
    colour ``(B, 3)``, each averaged over its pixels: the saturation of their mean, their RMS spread
    about it, and the share of the first in the two's sum (1 where they all agree)."""

    def __init__(self, members: int, **kwargs) -> None:
        super().__init__(dtype="float32", **kwargs)
        self.members = members

    def call(self, member_chroma):
        shape = ops.shape(member_chroma)
        chroma = ops.reshape(ops.cast(member_chroma, "float32"), (shape[0], shape[1], shape[2], self.members, 2))
        mean = ops.mean(chroma, axis=3, keepdims=True)
        saturation = ops.mean(ops.sqrt(ops.sum(ops.square(mean), axis=-1)), axis=(1, 2, 3))
        spread = ops.mean(ops.sqrt(ops.mean(ops.sum(ops.square(chroma - mean), axis=-1), axis=3)), axis=(1, 2))
        return ops.stack([saturation, spread, saturation / (saturation + spread + 1e-6)], axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "members": self.members}


@dataclass(frozen=True)
class PhotoGainFit:
    """A fitted choice of gain per photo, as ``fit-photo-gain`` writes it and ``export --photo-gain`` reads it.

    ``weights`` ``(F, K)`` and ``bias`` ``(K,)`` predict each of the K ``gains``' ΔE2000 from a
    photo's summary (its standardization folded in): the scene's features if ``scene``, then the
    members' doubt if ``doubt``.
    ``chroma_threshold`` is the decoding they were fitted under; ``fitted_on`` names the runs (folder names only).
    """

    gains: tuple[float, ...]
    lean: float
    chroma_threshold: float
    weights: np.ndarray
    bias: np.ndarray
    fitted_on: tuple[str, ...] = ()
    scene: bool = True
    doubt: bool = False

    def choose(self, summaries: np.ndarray) -> np.ndarray:
        """Index into ``gains`` of each photo's gain."""
        return np.argmin(summaries @ self.weights + self.bias - self.lean * np.asarray(self.gains), axis=-1)

    def with_lean(self, lean: float) -> PhotoGainFit:
        return replace(self, lean=lean)

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
                scene=document.get("scene", True),  # fits written before these read the scene only
                doubt=document.get("doubt", False),
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

    def __init__(self, choice: PhotoGainChoice, weights: np.ndarray, bias: np.ndarray) -> None:
        super().__init__(name="photo_gain")
        self.choice = choice  # as colorizer.json records it
        self.weights = tf.Variable(weights, dtype=tf.float32, trainable=False, name="weights")
        self.bias = tf.Variable(bias, dtype=tf.float32, trainable=False, name="bias")

    @classmethod
    def from_fit(cls, fit: PhotoGainFit) -> PhotoGain:
        choice = PhotoGainChoice(
            gains=list(fit.gains), lean=fit.lean, fitted_on=list(fit.fitted_on), scene=fit.scene, doubt=fit.doubt
        )
        return cls(choice, fit.weights, fit.bias)

    @classmethod
    def to_restore(cls, choice: PhotoGainChoice, generator: keras.Model) -> PhotoGain:
        """Zero weights, shaped for ``generator``'s scene summary, for an exported version's to be read into."""
        features = with_scene_summary(generator, scene=choice.scene, doubt=choice.doubt).outputs[1].shape[-1]
        shape = (features, len(choice.gains))
        return cls(choice, np.zeros(shape, np.float32), np.zeros(shape[1:], np.float32))

    def __call__(self, summaries: tf.Tensor) -> tf.Tensor:
        gains = tf.constant(self.choice.gains, tf.float32)
        predicted_delta_e = tf.matmul(tf.cast(summaries, tf.float32), self.weights) + self.bias
        return tf.gather(gains, tf.argmin(predicted_delta_e - self.choice.lean * gains, axis=-1))
