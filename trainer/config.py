"""The training configuration: one typed place, saved beside every run so it can be rebuilt.

Each setting states its default and its help text once, here; ``colorize-train train`` takes its
options from these fields (trainer/cli.py), so ``--help`` shows the same defaults and texts.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

MixedPrecision = Literal["auto", "on", "off"]
Head = Literal["classes", "regression"]
ChromaLoss = Literal["l1", "l1-rebalanced", "l1-mixed", "ciede2000"]
Arch = Literal["seed", "unet"]
StrategyName = Literal["auto", "default", "mirrored", "multi-worker"]  # trainer/distribution.py says what each does
STRATEGIES: tuple[str, ...] = get_args(StrategyName)

RUNS_DIR = Path("runs")  # a run's folder defaults to RUNS_DIR/<arch>

# What `choose-decoding` and `fit-photo-gain` search over when not told otherwise.
CHROMA_GAINS = (1.0, 1.25, 1.5, 1.75, 2.0)
CHROMA_THRESHOLDS = (0.0, 3.0, 6.0)  # Lab units
TEMPERATURES = (0.2, 0.38, 0.7, 1.0)  # of the classes head's annealed mean
PHOTO_GAINS = (0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75)  # the gains a photo may get
PHOTO_GAIN_LEANS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)  # ΔE2000 a photo may give up per unit of gain
RIDGE_STRENGTH = 1000.0  # on standardized features, from a few hundred photos per fit


@dataclass(frozen=True)
class ArchitectureDefaults:
    """What ``None`` means for the settings whose default depends on the architecture."""

    lr: float  # Adam's learning rate
    ema_decay: float  # of the moving average of the generator's weights that is exported; 0: none


ARCHITECTURE_DEFAULTS: dict[Arch, ArchitectureDefaults] = {
    "seed": ArchitectureDefaults(lr=5e-4, ema_decay=0.0),  # the seed's: it exported its raw weights
    "unet": ArchitectureDefaults(lr=5e-4, ema_decay=0.995),  # averages over the last ~200 steps
}


def _per_architecture(setting: str) -> str:
    return ", ".join(f"{arch} {getattr(defaults, setting):g}" for arch, defaults in ARCHITECTURE_DEFAULTS.items())


_HELP = "help"
_COMMAND_LINE = "command_line"


def _setting(default: Any, help: str, *, command_line: bool = True) -> Any:
    """A field with its help text (``MISSING``: no default); ``command_line=False`` keeps it off
    ``colorize-train train``."""
    return field(default=default, metadata={_HELP: help, _COMMAND_LINE: command_line})


@dataclass
class TrainConfig:
    """Everything that shapes a training run. Defaults are the seed's where it had one."""

    data: Path = _setting(MISSING, "A dataset made by `colorize-train dataset build`.")
    arch: Arch = _setting("unet", "`unet` (ours) or `seed` (the seed's GAN).")
    epochs: int = _setting(200, "Epochs to train in all; the default is the seed's.")
    batch_size: int = _setting(32, "Images per step on each replica.")
    lr: float | None = _setting(None, f"Adam learning rate; default: the architecture's ({_per_architecture('lr')}).")
    head: Head = _setting(
        "regression",
        "Ours: `classes` (a distribution over colours) or `regression` (chroma itself; won on validation).",
    )
    scene_encoder: bool = _setting(
        True, "Ours: also see the photo through a frozen backbone trained on COCO (trainer/scene_encoder.py)."
    )
    hints_in_decoder: bool = _setting(
        False, "Ours: also give the colour hints to the decoder at 1/4 and 1/2 resolution (tried: no closer to hints)."
    )
    scene_detail: bool = _setting(
        False,
        "Ours: also give the COCO detector's head features, at 1/2 resolution, to the decoder "
        "(tried: no better beyond seed noise).",
    )
    unet_width: float = _setting(
        0.35, "Ours: scale each U-Net's channels (16, 32, 64 and 128 at full, 1/2, 1/4 and 1/8 resolution) by this "
        "(one U-Net at 0.5: no better beyond seed noise than one at 1.0)."
    )
    members: int = _setting(
        8, "Ours, regression head: train this many U-Nets side by side on the one frozen backbone and average "
        "their chroma (a deep ensemble; 4 at width 0.5 or 8 at 0.35 cost what one full-width U-Net does; "
        "on the folds 4 beat the one, and 8 the 4)."
    )
    chroma_loss: ChromaLoss = _setting(
        "l1", "Ours, regression head: `l1` on (a, b); `l1-rebalanced`, each pixel weighed by how rare its colour is "
        "in the batch (tried: not adopted); `l1-mixed`, half the members each (two or more members); or `ciede2000`, "
        "the colour difference it is scored by (tried: no better beyond seed noise)."
    )
    l1_weight: float = _setting(100.0, "Ours, regression head: weight of the chroma term (pix2pix's 100 for L1).")
    adversarial_weight: float = _setting(0.0, "Ours: weight of the patch-GAN term (0: no discriminator).")
    # At most this many files of one source photo per epoch, so photos weigh the same, not files.
    crops_per_photo: int = _setting(2, "Files of one source photo used per epoch, at most.")
    # And at most this many photos of one collection (the manifest's), so collections weigh closer to the same.
    photos_per_collection: int | None = _setting(
        None, "Source photos of one collection used per epoch, at most; default: all."
    )
    paste_objects: Path | None = _setting(
        None,
        "A folder of PNG cut-outs (objects on a transparent background) to paste onto half the training crops, "
        "so the model sees more objects in their true colours; default: none (tried: better on the folds with one "
        "seed, level with a second).",
    )
    film_share: float = _setting(
        0.0,
        "Share of training crops whose gray is remade from the colour with random weights on red, green and blue, "
        "as films other than the eye record it (orthochromatic, red-filtered); default 0: the dataset's BT.601 luma "
        "(tried 0.5: no nearer the truth on such grays beyond seed noise).",
    )
    ema_decay: float | None = _setting(
        None,
        "Export a moving average of the generator's weights with this decay (0: off); "
        f"default: the architecture's ({_per_architecture('ema_decay')}).",
    )
    label_softening: float = _setting(0.1, "Real labels drawn from [1 - this, 1].", command_line=False)
    seed: int = _setting(0, "Random seed (weights, shuffling, augmentation).")
    # None becomes RUNS_DIR/<arch> on construction, so a saved config.json always names the folder.
    run_dir: Path | None = _setting(None, f"Checkpoints, logs and samples; default {RUNS_DIR}/<arch>.")
    models_dir: Path = _setting(Path("models/colorizer"), "Where the exported version is written.")
    sample_every: int = _setting(5, "Epochs between sample grids.")
    checkpoint_every_min: float = _setting(
        10.0, "Also checkpoint mid-epoch, at most this many minutes apart.", command_line=False
    )
    validate_every_min: float = _setting(5.0, "CPU-minutes of training between scores on the validation split.")
    time_budget_min: float | None = _setting(
        None, "Stop after this much process CPU time (minutes), counted across resumes."
    )
    threads: int | None = _setting(None, "TensorFlow intra- and inter-op threads; default all cores.")
    mixed_precision: MixedPrecision = _setting("auto", "auto (on with a GPU), on or off.")
    strategy: StrategyName = _setting(
        "auto",
        "tf.distribute: auto (multi-worker from TF_CONFIG, mirrored with 2+ GPUs, else default), "
        "default, mirrored or multi-worker.",
    )

    def __post_init__(self) -> None:
        self.data, self.models_dir = Path(self.data), Path(self.models_dir)
        self.paste_objects = None if self.paste_objects is None else Path(self.paste_objects)
        self.run_dir = RUNS_DIR / self.arch if self.run_dir is None else Path(self.run_dir)
        if self.arch not in get_args(Arch):
            raise ValueError(f"Unknown architecture. Expected one of {get_args(Arch)}. Received: arch={self.arch!r}")
        if self.epochs < 1:
            raise ValueError(f"`epochs` must be at least 1. Received: epochs={self.epochs}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"`ema_decay` must be in [0, 1). Received: ema_decay={self.ema_decay}")
        if self.crops_per_photo < 1:
            raise ValueError(f"`crops_per_photo` must be at least 1. Received: crops_per_photo={self.crops_per_photo}")
        if self.photos_per_collection is not None and self.photos_per_collection < 1:
            raise ValueError(
                f"`photos_per_collection` must be at least 1. Received: photos_per_collection={self.photos_per_collection}"
            )
        if not 0.0 <= self.film_share <= 1.0:
            raise ValueError(f"`film_share` must be in [0, 1]. Received: film_share={self.film_share}")
        if self.adversarial_weight < 0:
            raise ValueError(f"`adversarial_weight` must be 0 or more. Received: adversarial_weight={self.adversarial_weight}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"`strategy` must be one of {', '.join(STRATEGIES)}. Received: strategy={self.strategy!r}")
        if self.unet_width <= 0:
            raise ValueError(f"`unet_width` must be above 0. Received: unet_width={self.unet_width}")
        if self.arch == "unet" and self.head == "classes" and self.members > 1:
            raise ValueError(f"The classes head takes one member: give `--members 1`. Received: members={self.members}")
        if self.chroma_loss == "l1-mixed" and self.members < 2:
            raise ValueError(
                f"`l1-mixed` splits the members between two losses: give `--members 2` or more. Received: members={self.members}"
            )
        if self.batch_size < 1:
            raise ValueError(f"`batch_size` must be at least 1. Received: batch_size={self.batch_size}")

    def to_json(self) -> dict[str, Any]:
        return {key: str(value) if isinstance(value, Path) else value for key, value in asdict(self).items()}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    # Settings added with a default other than what runs saved before them trained with.
    BEFORE_SAVED = {"scene_encoder": False, "unet_width": 1.0, "members": 1}

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_json(json.loads(path.read_text()))

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> TrainConfig:
        """The settings ``to_json`` wrote (by any version of this code: unknown keys are left out)."""
        saved = {**cls.BEFORE_SAVED, **saved}
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in saved.items() if key in known})

    # What may change between a run and its resumption: how long and where it runs, and the learning
    # rate (a lower one continues a run that diverged or stopped improving on validation).
    RESUMABLE_CHANGES = frozenset({"epochs", "time_budget_min", "threads", "sample_every", "checkpoint_every_min", "models_dir", "validate_every_min", "strategy", "lr"})

    def differences(self, other: TrainConfig) -> list[str]:
        mine, theirs = self.to_json(), other.to_json()
        return [key for key in mine if key not in self.RESUMABLE_CHANGES and mine[key] != theirs[key]]


def help_text(setting: Field) -> str:
    return setting.metadata[_HELP]


def command_line_settings() -> list[Field]:
    """The fields ``colorize-train train`` takes, in their order; the others keep their defaults."""
    return [setting for setting in fields(TrainConfig) if setting.metadata[_COMMAND_LINE]]
