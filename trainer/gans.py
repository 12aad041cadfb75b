"""What differs between the seed's GAN and ours, behind one interface the training step uses.

An architecture says how to build its networks, what its generator learns to output from an RGB
photo (the target), how the discriminator sees a sample, its losses, and how its generator's output
becomes RGB for export and samples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import get_args

import keras
import tensorflow as tf

from colorizer_core.contract import HINT_MASK_CHANNEL
from colorizer_trainer import color, losses, networks
from colorizer_trainer.config import ARCHITECTURE_DEFAULTS, Arch, ChromaLoss, TrainConfig
from colorizer_trainer.photo_gain import PhotoGain

DEFAULT_TEMPERATURE = 0.38  # Zhang et al. 2016's annealed mean; chosen again on validation at export
DEFAULT_HINT_SPREAD = 48.0  # pixels at the native size (color.spread_hints): chosen on the held-out folds (docs/results.md)
# A photo given hints is never strengthened by the gain its scene would get (docs/results.md, Colour hints): chosen
# on the held-out folds with the hint spread, which gives the hints' colour where they reach.
DEFAULT_HINTED_MAX_GAIN = 1.0
CLASS_HEAD_STRIDE = 4  # the classes head predicts at 1/4 resolution


class Architecture(ABC):
    name: str
    native_size: int
    accepts_other_sizes: bool
    size_multiple: int
    default_beta_1: float
    augment_flips: bool
    train_crop: int | None  # train on random square crops of this side (None: whole images)
    takes_hints: bool = False  # the generator's second input: colour hints (core/contract.py)
    photo_gain: PhotoGain | None = None  # picks a chroma gain per photo in the export (trainer/photo_gain.py)

    @property
    def default_lr(self) -> float:
        return ARCHITECTURE_DEFAULTS[self.name].lr

    @property
    def default_ema_decay(self) -> float:
        """Of the moving average of the generator's weights that is exported; 0: none."""
        return ARCHITECTURE_DEFAULTS[self.name].ema_decay

    @abstractmethod
    def build_generator(self) -> keras.Model: ...

    @abstractmethod
    def build_discriminator(self) -> keras.Model | None:
        """None: no adversarial term; the generator learns from its own loss alone."""

    @abstractmethod
    def target(self, rgb: tf.Tensor) -> tf.Tensor:
        """What the generator should output for this RGB photo."""

    def prediction(self, output: tf.Tensor) -> tf.Tensor:
        """The generator's output as one prediction in the target's form, undecoded: what the discriminator
        judges beside a target."""
        return output

    @abstractmethod
    def discriminate(self, discriminator, gray, prediction, *, training: bool) -> tf.Tensor:
        """The discriminator's score for a ``prediction`` (or a target) of the photo ``gray``."""

    def decoding(self) -> dict[str, float]:
        """How the generator's output becomes colour, as an export records it (none by default)."""
        return {}

    def set_native_size(self, size: int) -> None:
        """See photos at ``size`` x ``size``, a choice made on validation like the decoding (the export
        records it as the model's native size); refused where the network takes no other side."""
        if size != self.native_size and (not self.accepts_other_sizes or size % self.size_multiple):
            raise ValueError(
                f"The {self.name} architecture sees photos at {self.native_size}"
                + (f" or a multiple of {self.size_multiple}" if self.accepts_other_sizes else " only")
                + f". Received: size={size}"
            )
        self.native_size = size

    def set_decoding(self, **choices: float) -> None:
        """Change decoding choices made on validation; a name this architecture lacks is refused."""
        unknown = set(choices) - set(self.decoding())
        if unknown:
            raise ValueError(f"The {self.name} architecture has no decoding choice {sorted(unknown)}.")
        for name, value in choices.items():
            setattr(self, name, value)

    @abstractmethod
    def generator_loss(self, fake, real, fake_score, *, global_batch_size: int) -> losses.Losses: ...

    discriminator_losses: Callable[..., losses.Losses]  # a function of trainer/losses.py
    label_softening: float

    def discriminator_loss(self, real_score, fake_score, *, global_batch_size: int, seed) -> losses.Losses:
        return type(self).discriminator_losses(
            real_score,
            fake_score,
            global_batch_size=global_batch_size,
            label_softening=self.label_softening,
            seed=seed,
        )

    @abstractmethod
    def to_rgb(
        self, gray: tf.Tensor, output: tf.Tensor, photo_gains: tf.Tensor | None = None, hints: tf.Tensor | None = None
    ) -> tf.Tensor:
        """The generator's output as RGB ``(B, H, W, 3)`` in [0, 1]; ``photo_gains`` ``(B,)``, where
        ``photo_gain`` picked them, replace the chroma gain; ``hints``, the model's hints input, where
        the decoding spreads them."""


class SeedArchitecture(Architecture):
    """The seed notebook's GAN, kept faithful as our baseline."""

    name = "seed"
    native_size = networks.SEED_SIZE
    accepts_other_sizes = False
    size_multiple = 1
    default_beta_1 = 0.9
    augment_flips = False
    train_crop = None
    discriminator_losses = staticmethod(losses.seed_discriminator_loss)

    def __init__(self, *, label_softening: float) -> None:
        self.label_softening = label_softening

    def build_generator(self) -> keras.Model:
        return networks.build_seed_generator()

    def build_discriminator(self) -> keras.Model:
        return networks.build_seed_discriminator()

    def target(self, rgb):
        return rgb

    def discriminate(self, discriminator, gray, prediction, *, training):
        return discriminator(prediction, training=training)

    def generator_loss(self, fake, real, fake_score, *, global_batch_size):
        return losses.seed_generator_loss(fake, real, fake_score, global_batch_size=global_batch_size)

    def to_rgb(self, gray, output, photo_gains=None, hints=None):
        return tf.clip_by_value(tf.cast(output, tf.float32), 0.0, 1.0)


class UNetArchitecture(Architecture):
    """Ours: Lab chroma from luminance and hints, a context U-Net and an optional patch discriminator."""

    name = "unet"
    native_size = networks.SEED_SIZE
    accepts_other_sizes = True
    size_multiple = networks.UNET_MULTIPLE
    augment_flips = True
    # Fully convolutional, so it learns from random resized crops: ~2.4x the updates per CPU-second
    # of whole 200x200 photos, and each crop still holds most of its photo's context.
    train_crop = 128
    discriminator_losses = staticmethod(losses.discriminator_loss)

    def __init__(
        self,
        config: networks.UNetConfig,
        *,
        l1_weight: float,
        adversarial_weight: float,
        label_softening: float,
        chroma_loss: ChromaLoss = "l1",
        temperature: float = DEFAULT_TEMPERATURE,
        chroma_gain: float = 1.0,
        chroma_threshold: float = 0.0,
    ) -> None:
        self.config = config
        self.takes_hints = config.hints
        self.l1_weight = l1_weight
        self.member_losses = losses.member_chroma_losses(chroma_loss, config.members)
        self.adversarial_weight = adversarial_weight
        self.label_softening = label_softening
        self.temperature = temperature
        # Decoding choices made on validation, like the temperature.
        self.chroma_gain = chroma_gain
        self.chroma_threshold = chroma_threshold
        self.hint_spread = DEFAULT_HINT_SPREAD
        self.hinted_max_gain = DEFAULT_HINTED_MAX_GAIN
        self.default_beta_1 = 0.5 if adversarial_weight else 0.9  # pix2pix's 0.5 steadies adversarial training
        self.bins = color.gamut_ab_bins() if config.head == "classes" else None

    def build_generator(self) -> keras.Model:
        return networks.build_unet_generator(self.config)

    def build_discriminator(self) -> keras.Model | None:
        return networks.build_patch_discriminator(self.config) if self.adversarial_weight else None

    def target(self, rgb):
        return color.rgb_to_lab(rgb)[..., 1:] / color.AB_SCALE  # (B, H, W, 2) in [-1, 1]

    def _members(self, output: tf.Tensor) -> list[tf.Tensor]:
        """A regression head's output as each member's chroma ``(B, H, W, 2)``."""
        return tf.split(tf.cast(output, tf.float32), self.config.members, axis=-1)

    def prediction(self, output: tf.Tensor) -> tf.Tensor:
        """Chroma ``(B, H, W, 2)`` in [-1, 1], undecoded: the members' mean, or a classes head's annealed mean."""
        if self.bins is None:
            members = self._members(output)
            return tf.add_n(members) / len(members)
        chroma = color.annealed_mean(output, self.bins, self.temperature)
        return networks.Upsample(CLASS_HEAD_STRIDE, dtype="float32")(chroma)

    def chroma(self, output: tf.Tensor, photo_gains: tf.Tensor | None = None) -> tf.Tensor:
        """The generator's output as chroma ``(B, H, W, 2)`` in [-1, 1], decoded (``color.decode_chroma``)."""
        gain = self.chroma_gain if photo_gains is None else photo_gains
        return color.decode_chroma(self.prediction(output), gain=gain, threshold=self.chroma_threshold)

    def decoding(self) -> dict[str, float]:
        """The decoding choices an export records: the gain and threshold, how far hints spread and the
        gain a hinted photo keeps at most, and the temperature of a classes head."""
        chroma = {"chroma_gain": self.chroma_gain, "chroma_threshold": self.chroma_threshold}
        chroma |= {"hint_spread": self.hint_spread, "hinted_max_gain": self.hinted_max_gain}
        return {**chroma, **({"temperature": self.temperature} if self.bins is not None else {})}

    def discriminate(self, discriminator, gray, prediction, *, training):
        return discriminator([gray, prediction], training=training)

    def generator_loss(self, fake, real, fake_score, *, global_batch_size):
        if self.bins is None:
            # Each member learns on its own, as if trained alone: its loss, averaged over members.
            members = [
                loss(member, real, global_batch_size=global_batch_size, weight=self.l1_weight)
                for loss, member in zip(self.member_losses, self._members(fake), strict=True)
            ]
            parts = {name: tf.add_n([member[name] for member in members]) / len(members) for name in members[0]}
        else:
            parts = losses.chroma_cross_entropy(
                fake, real, self.bins, stride=CLASS_HEAD_STRIDE, global_batch_size=global_batch_size
            )
        if fake_score is not None:
            parts = losses.with_adversarial(parts, fake_score, global_batch_size=global_batch_size, weight=self.adversarial_weight)
        return parts

    def to_rgb(self, gray, output, photo_gains=None, hints=None):
        """RGB from ``gray`` and the generator's ``output``, decoded at ``photo_gains`` ``(B,)`` (else the gain for
        all); a photo given ``hints`` keeps at most ``hinted_max_gain`` of it, and its hints are spread."""
        if hints is not None:
            hinted = tf.reduce_max(hints[..., HINT_MASK_CHANNEL], axis=[1, 2]) > 0
            gains = tf.fill(tf.shape(hinted), self.chroma_gain) if photo_gains is None else photo_gains
            photo_gains = tf.where(hinted, tf.minimum(gains, self.hinted_max_gain), gains)
        chroma = self.chroma(output, photo_gains)
        if hints is not None and self.hint_spread:
            chroma = color.spread_hints(chroma, gray, hints, sigma=self.hint_spread, native_size=self.native_size)
        return color.lab_to_rgb(color.lab_from_gray_and_ab(gray, chroma))


ARCH_NAMES = get_args(Arch)


def architecture_for(config: TrainConfig) -> Architecture:
    """The architecture a training run's ``config`` trains."""
    return get_architecture(
        config.arch,
        head=config.head,
        scene_encoder=config.scene_encoder,
        hints_in_decoder=config.hints_in_decoder,
        scene_detail=config.scene_detail,
        unet_width=config.unet_width,
        members=config.members,
        chroma_loss=config.chroma_loss,
        l1_weight=config.l1_weight,
        adversarial_weight=config.adversarial_weight,
        label_softening=config.label_softening,
    )


def get_architecture(
    name: str,
    *,
    head: networks.Head = TrainConfig.head,
    scene_encoder: bool = TrainConfig.scene_encoder,
    hints_in_decoder: bool = TrainConfig.hints_in_decoder,
    scene_detail: bool = TrainConfig.scene_detail,
    unet_width: float = TrainConfig.unet_width,
    members: int = TrainConfig.members,
    chroma_loss: ChromaLoss = TrainConfig.chroma_loss,
    l1_weight: float = TrainConfig.l1_weight,
    adversarial_weight: float = TrainConfig.adversarial_weight,
    label_softening: float = TrainConfig.label_softening,
    temperature: float = DEFAULT_TEMPERATURE,
) -> Architecture:
    """The architecture ``name``, its settings defaulting to ``TrainConfig``'s."""
    if name == "seed":
        return SeedArchitecture(label_softening=label_softening)
    if name == "unet":
        return UNetArchitecture(
            networks.UNetConfig(
                widths=networks.scaled_widths(unet_width),
                head=head,
                scene_encoder=scene_encoder,
                hints_in_decoder=hints_in_decoder,
                scene_detail=scene_detail,
                members=members,
            ),
            l1_weight=l1_weight,
            adversarial_weight=adversarial_weight,
            label_softening=label_softening,
            chroma_loss=chroma_loss,
            temperature=temperature,
        )
    raise ValueError(f"Unknown architecture. Expected one of {ARCH_NAMES}. Received: arch={name!r}")
