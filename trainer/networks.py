"""The generators and discriminators, each built by one function.

``seed``: the seed notebook's GAN layer for layer (see shared/SEED.md), unpadded and unstrided.
``unet``: our default, a strided U-Net that predicts Lab chroma from luminance at a small fraction
of the seed's compute, and a conditional patch discriminator that judges (gray, chroma) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers

from colorizer_trainer import color
from colorizer_trainer.config import Head
from colorizer_trainer.scene_encoder import SceneEncoder

SEED_SIZE = 200


# --- the seed's GAN ---------------------------------------------------------------------------


def build_seed_generator(size: int = SEED_SIZE) -> keras.Model:
    """Gray ``(B, 200, 200, 1)`` in [0, 1] to RGB ``(B, 200, 200, 3)`` (ReLU, so >= 0)."""

    def conv(x, filters, kernel, name):
        x = layers.Conv2D(filters, kernel, name=name)(x)
        return layers.LeakyReLU(name=f"{name}_lrelu")(x)

    def deconv(x, filters, kernel, name):
        return layers.Conv2DTranspose(filters, kernel, activation="relu", name=name)(x)

    gray = layers.Input((size, size, 1), name="gray")
    x = gray
    skips = []
    for block, (narrow, wide) in enumerate([(16, 32), (32, 64), (64, 128)], start=1):
        x = conv(x, narrow, 5, f"enc{block}_a")
        x = conv(x, wide, 3, f"enc{block}_b")
        x = conv(x, wide, 3, f"enc{block}_c")
        skips.append(x)
    x = layers.Conv2D(128, 3, padding="same", activation="tanh", name="bottleneck")(x)
    for block, (wide, narrow) in enumerate([(128, 64), (64, 32), (32, 3)], start=1):
        x = layers.Concatenate(name=f"dec{block}_concat")([x, skips.pop()])
        x = deconv(x, wide, 3, f"dec{block}_a")
        x = deconv(x, wide, 3, f"dec{block}_b")
        x = deconv(x, narrow, 5, f"dec{block}_c")
    return keras.Model(gray, x, name="seed_generator")


def build_seed_discriminator(size: int = SEED_SIZE) -> keras.Model:
    """RGB ``(B, 200, 200, 3)`` to the probability ``(B, 1)`` that it is a real photo."""
    rgb = layers.Input((size, size, 3), name="rgb")
    x = rgb
    for filters, kernel in [(32, 7), (64, 5), (128, 3), (256, 3)]:
        x = layers.Conv2D(filters, kernel, activation="relu", name=f"conv{filters}_a")(x)
        x = layers.Conv2D(filters, kernel, activation="relu", name=f"conv{filters}_b")(x)
        x = layers.MaxPooling2D(2, name=f"pool{filters}")(x)
    x = layers.Flatten(name="flatten")(x)
    for units in (512, 128, 16):
        x = layers.Dense(units, activation="relu", name=f"dense{units}")(x)
    probability = layers.Dense(1, activation="sigmoid", dtype="float32", name="real")(x)
    return keras.Model(rgb, probability, name="seed_discriminator")


# --- ours: a strided U-Net on Lab chroma, with the whole scene in view and colour hints ------------

UNET_WIDTHS = (16, 32, 64, 128)  # channels at full, 1/2, 1/4 and 1/8 resolution


def scaled_widths(multiplier: float) -> tuple[int, int, int, int]:
    """``UNET_WIDTHS`` times ``multiplier``, at least one channel each (MobileNet's width multiplier)."""
    return tuple(max(1, round(width * multiplier)) for width in UNET_WIDTHS)


@dataclass(frozen=True)
class UNetConfig:
    """The shape of the default generator.

    widths: channels at full, 1/2, 1/4 and 1/8 resolution.
    bottleneck_dilations: dilated 3x3 convolutions at 1/8 resolution, for a receptive field of most
        of a 200x200 photo at little cost.
    global_context: fuse a summary of the whole photo into every position of the bottleneck
        (Iizuka et al. 2016), so colour is decided with the whole scene in view, not patch by patch.
    head: ``classes``: a distribution over quantized (a, b) bins at 1/4 resolution (Zhang et al.
        2016), decoded by an annealed mean; ``regression``: chroma itself at 1/2 resolution.
    hints: take a second input of user colour hints (Zhang et al. 2017; see core/contract.py).
    scene_encoder: fuse the features of a frozen backbone trained on COCO into the bottleneck
        (trainer/scene_encoder.py), so colour follows what is in the photo.
    hints_in_decoder: also give the hints, averaged down, to the decoder at 1/4 and 1/2 resolution,
        so a hint need not survive the encoder and the bottleneck to colour its region.
    scene_detail: also give the COCO detector's head features, at 1/2 resolution, to the decoder at
        1/4 and 1/2 resolution, so where one object ends and another begins is known where colour is
        drawn, not only at 1/8.
    members: U-Nets trained side by side from their own initial weights on the same inputs and the
        one frozen backbone, whose chroma is averaged (a deep ensemble, Lakshminarayanan et al. 2017):
        where they disagree, the average is duller and the error smaller. Regression head only.
    """

    widths: tuple[int, int, int, int] = UNET_WIDTHS
    bottleneck_dilations: tuple[int, ...] = (1, 2, 4)
    global_context: bool = True
    head: Head = "regression"
    hints: bool = True
    scene_encoder: bool = False
    hints_in_decoder: bool = False
    scene_detail: bool = False
    members: int = 1
    discriminator_widths: tuple[int, ...] = (32, 64, 128)

    def __post_init__(self) -> None:
        if len(self.widths) != 4 or min(self.widths) < 1:
            raise ValueError(f"`widths` must be 4 positive channel counts. Received: widths={self.widths}")
        if self.head not in ("classes", "regression"):
            raise ValueError(f"`head` must be 'classes' or 'regression'. Received: head={self.head!r}")
        if self.hints_in_decoder and not self.hints:
            raise ValueError("`hints_in_decoder` needs `hints`. Received: hints=False, hints_in_decoder=True")
        if self.scene_detail and not self.scene_encoder:
            raise ValueError("`scene_detail` needs `scene_encoder`. Received: scene_encoder=False, scene_detail=True")
        if self.members < 1:
            raise ValueError(f"`members` must be at least 1. Received: members={self.members}")
        if self.members > 1 and self.head != "regression":
            raise ValueError(f"`members` above 1 needs the regression head. Received: head={self.head!r}")


UNET_MULTIPLE = 8  # three stride-2 stages: input sides must divide by 8
SCENE_DETAIL_WIDTH = 16  # channels the detector's 128 head features are projected to for the decoder


class Upsample(layers.Layer):
    """Bilinear upsampling by ``factor`` that also works when H and W are unknown until run time
    (Keras' UpSampling2D needs them at trace time, which an any-size SavedModel signature lacks)."""

    def __init__(self, factor: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        size = tf.shape(x)[1:3] * self.factor
        return tf.cast(tf.image.resize(x, size, method="bilinear"), x.dtype)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class ResizeLike(layers.Layer):
    """Bilinear resize of ``x`` to the height and width of ``like``, known or not until run time."""

    def call(self, x, like):
        return tf.cast(tf.image.resize(x, tf.shape(like)[1:3], method="bilinear"), self.compute_dtype)


class BroadcastGlobal(layers.Layer):
    """Tile a per-photo vector ``(B, 1, 1, C)`` over the positions of ``like`` ``(B, h, w, *)``."""

    def call(self, summary, like):
        shape = tf.concat([tf.shape(like)[:3], tf.shape(summary)[3:]], axis=0)
        return tf.broadcast_to(summary, shape)


class HintFeatures(layers.Layer):
    """Hints ``(B, H, W, 4)`` (sRGB colour + mask) to ``(B, H, W, 3)``: Lab chroma / AB_SCALE where
    the mask is set, zero elsewhere, and the mask. The luminance of a hint's colour is dropped."""

    def call(self, hints):
        hints = tf.cast(hints, tf.float32)
        mask = hints[..., 3:]
        chroma = color.rgb_to_lab(hints[..., :3])[..., 1:] / color.AB_SCALE * mask
        return tf.cast(tf.concat([chroma, mask], axis=-1), self.compute_dtype)


def _conv_bn_relu(x, filters: int, name: str, *, kernel: int = 3, strides: int = 1, dilation: int = 1):
    x = layers.Conv2D(
        filters, kernel, strides=strides, dilation_rate=dilation, padding="same", use_bias=False, name=name
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _global_fusion(x, width: int, prefix: str = ""):
    summary = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}global_pool")(x)
    summary = layers.Dense(width, activation="relu", name=f"{prefix}global_dense1")(summary)
    summary = layers.Dense(width, activation="relu", name=f"{prefix}global_dense2")(summary)
    fused = layers.Concatenate(name=f"{prefix}global_concat")([x, BroadcastGlobal(name=f"{prefix}global_broadcast")(summary, x)])
    return layers.Conv2D(width, 1, activation="relu", name=f"{prefix}global_fusion")(fused)


def _scene_fusion(features, x, width: int, prefix: str = ""):
    """Mix the COCO backbone's features at 1/8 and 1/16 (``features[:2]``), resized to ``x``'s positions, into ``x``."""
    resized = [ResizeLike(name=f"{prefix}scene_resize{index}")(feature, x) for index, feature in enumerate(features[:2])]
    concatenated = layers.Concatenate(name=f"{prefix}scene_concat")([x, *resized])
    return _conv_bn_relu(concatenated, width, f"{prefix}scene_fusion", kernel=1)


def build_unet_generator(config: UNetConfig = UNetConfig()) -> keras.Model:
    """Gray ``(B, H, W, 1)`` in [0, 1] (and hints ``(B, H, W, 4)``) to the head's output.

    ``regression``: chroma ``(B, H, W, 2)``, Lab (a, b) / AB_SCALE in [-1, 1]; with several
    ``members``, each member's chroma side by side, ``(B, H, W, 2 * members)``.
    ``classes``: logits ``(B, H/4, W/4, Q)`` over the Q (a, b) bins of ``color.gamut_ab_bins``.
    Fully convolutional: H and W may be any multiples of 8.
    """
    gray = layers.Input((None, None, 1), name="gray")
    inputs = [gray]
    x = layers.Rescaling(2.0, offset=-1.0, name="center")(gray)  # [0, 1] -> [-1, 1]
    decoder_joins = {4: [], 2: []}  # more inputs for the decoder at 1/4 and 1/2 resolution
    if config.hints:
        hints = layers.Input((None, None, 4), name="hints")
        inputs.append(hints)
        hint_features = HintFeatures(name="hint_features")(hints)
        x = layers.Concatenate(name="with_hints")([x, hint_features])
        if config.hints_in_decoder:
            decoder_joins = {
                factor: [layers.AveragePooling2D(factor, padding="same", name=f"hints_down{factor}")(hint_features)]
                for factor in decoder_joins
            }
    # The backbone is frozen, so its features are computed once and shared by every member.
    scene = SceneEncoder(detail=config.scene_detail, name="scene_encoder")(gray) if config.scene_encoder else None
    if config.members == 1:
        output = _unet(x, scene, decoder_joins, config)
    else:
        members = [_unet(x, scene, decoder_joins, config, prefix=f"m{member}_") for member in range(config.members)]
        output = layers.Concatenate(dtype="float32", name="member_chroma")(members)
    return keras.Model(inputs if len(inputs) > 1 else gray, output, name="unet_generator")


def _unet(x, scene, decoder_joins: dict[int, list], config: UNetConfig, prefix: str = ""):
    """One U-Net from the centred gray (and hint features) ``x`` to the head's output; ``scene``: the
    backbone's features, or None. ``prefix`` names its layers apart from another member's."""
    full, half, quarter, eighth = config.widths
    decoder_joins = {factor: list(joins) for factor, joins in decoder_joins.items()}
    e1 = _conv_bn_relu(x, full, f"{prefix}enc1")  # (B, H, W, full)
    e2 = _conv_bn_relu(e1, half, f"{prefix}enc2_down", strides=2)
    e2 = _conv_bn_relu(e2, half, f"{prefix}enc2")  # (B, H/2, W/2, half)
    e3 = _conv_bn_relu(e2, quarter, f"{prefix}enc3_down", strides=2)
    e3 = _conv_bn_relu(e3, quarter, f"{prefix}enc3")  # (B, H/4, W/4, quarter)
    x = _conv_bn_relu(e3, eighth, f"{prefix}enc4_down", strides=2)
    if scene is not None:
        x = _scene_fusion(scene, x, eighth, prefix)
    if config.scene_detail:
        detail = _conv_bn_relu(scene[2], SCENE_DETAIL_WIDTH, f"{prefix}scene_detail", kernel=1)
        for factor, like in ((4, e3), (2, e2)):
            decoder_joins[factor].append(ResizeLike(name=f"{prefix}scene_detail{factor}")(detail, like))
    bottleneck_in = x
    for dilation in config.bottleneck_dilations:
        x = _conv_bn_relu(x, eighth, f"{prefix}bottleneck_d{dilation}", dilation=dilation)
    x = layers.Add(name=f"{prefix}bottleneck_residual")([x, bottleneck_in])  # (B, H/8, W/8, eighth)
    if config.global_context:
        x = _global_fusion(x, eighth, prefix)

    x = Upsample(name=f"{prefix}dec3_up")(x)
    x = layers.Concatenate(name=f"{prefix}dec3_concat")([x, e3, *decoder_joins[4]])
    x = _conv_bn_relu(x, quarter, f"{prefix}dec3")  # (B, H/4, W/4, quarter)
    if config.head == "classes":
        bins = int(color.gamut_ab_bins().shape[0])
        return layers.Conv2D(bins, 1, dtype="float32", name=f"{prefix}ab_logits")(x)
    x = Upsample(name=f"{prefix}dec2_up")(x)
    x = _conv_bn_relu(layers.Concatenate(name=f"{prefix}dec2_concat")([x, e2, *decoder_joins[2]]), half, f"{prefix}dec2")
    chroma = layers.Conv2D(2, 1, activation="tanh", dtype="float32", name=f"{prefix}chroma_half")(x)
    return Upsample(dtype="float32", name=f"{prefix}chroma")(chroma)


def build_patch_discriminator(config: UNetConfig = UNetConfig()) -> keras.Model:
    """A pix2pix-style patch discriminator on (gray, chroma) pairs.

    Returns logits ``(B, H/8, W/8, 1)``: one real/fake judgement per ~40x40 patch, so it rewards
    plausible local colour rather than one global guess.
    """
    gray = layers.Input((None, None, 1), name="gray")
    chroma = layers.Input((None, None, 2), name="chroma")
    x = layers.Concatenate(name="pair")([layers.Rescaling(2.0, offset=-1.0, name="center")(gray), chroma])
    for index, filters in enumerate(config.discriminator_widths):
        x = layers.Conv2D(filters, 4, strides=2, padding="same", name=f"down{index}")(x)
        if index > 0:
            x = layers.BatchNormalization(name=f"down{index}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"down{index}_lrelu")(x)
    logits = layers.Conv2D(1, 3, padding="same", dtype="float32", name="patch_logits")(x)
    return keras.Model([gray, chroma], logits, name="patch_discriminator")
