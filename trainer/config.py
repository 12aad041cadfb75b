"""The training configuration: one typed place, saved beside every run so it can be rebuilt."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_args

MixedPrecision = Literal["auto", "on", "off"]
Head = Literal["classes", "regression"]
Arch = Literal["seed", "unet"]
StrategyName = Literal["auto", "default", "mirrored", "multi-worker"]  # trainer/distribution.py says what each does
STRATEGIES: tuple[str, ...] = get_args(StrategyName)


@dataclass
class TrainConfig:
    """Everything that shapes a training run. Defaults are the seed's where it had one."""

    data: Path
    arch: Arch = "unet"
    epochs: int = 200  # the seed's
    batch_size: int = 32
    lr: float | None = None  # None: the architecture's default (the seed's 5e-4 for `seed`)
    head: Head = "regression"  # ours: chroma itself (won on validation), or a distribution over (a, b) bins
    l1_weight: float = 100.0  # ours, regression head: weight of the chroma L1 (pix2pix's)
    adversarial_weight: float = 0.0  # ours: weight of the patch-GAN term; 0 trains no discriminator
    crops_per_photo: int = 2  # files of one source photo per epoch at most: photos weigh the same, not files
    ema_decay: float | None = None  # None: the architecture's default; 0: export the raw weights
    label_softening: float = 0.1  # real labels drawn from [1 - this, 1]
    seed: int = 0
    run_dir: Path = Path("runs/unet")
    models_dir: Path = Path("models/colorizer")
    sample_every: int = 5  # epochs between sample grids
    checkpoint_every_min: float = 10.0  # also checkpoint mid-epoch, at most this far apart
    validate_every_min: float = 5.0  # CPU-minutes of training between scores on the validation split
    time_budget_min: float | None = None  # stop (and export) after this much process CPU time
    threads: int | None = None  # TensorFlow intra/inter-op threads; None: all cores
    mixed_precision: MixedPrecision = "auto"  # auto: on when a GPU is present
    strategy: StrategyName = "auto"  # tf.distribute: multi-worker from TF_CONFIG, else mirrored with 2+ GPUs (trainer/distribution.py)

    def __post_init__(self) -> None:
        self.data, self.run_dir, self.models_dir = Path(self.data), Path(self.run_dir), Path(self.models_dir)
        if self.arch not in get_args(Arch):
            raise ValueError(f"Unknown architecture. Expected one of {get_args(Arch)}. Received: arch={self.arch!r}")
        if self.epochs < 1:
            raise ValueError(f"`epochs` must be at least 1. Received: epochs={self.epochs}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"`ema_decay` must be in [0, 1). Received: ema_decay={self.ema_decay}")
        if self.crops_per_photo < 1:
            raise ValueError(f"`crops_per_photo` must be at least 1. Received: crops_per_photo={self.crops_per_photo}")
        if self.adversarial_weight < 0:
            raise ValueError(f"`adversarial_weight` must be 0 or more. Received: adversarial_weight={self.adversarial_weight}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"`strategy` must be one of {', '.join(STRATEGIES)}. Received: strategy={self.strategy!r}")
        if self.batch_size < 1:
            raise ValueError(f"`batch_size` must be at least 1. Received: batch_size={self.batch_size}")

    def to_json(self) -> dict[str, Any]:
        return {key: str(value) if isinstance(value, Path) else value for key, value in asdict(self).items()}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        saved = json.loads(path.read_text())
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in saved.items() if key in known})

    # What may change between a run and its resumption: how long and where it runs, and the learning
    # rate (a lower one continues a run that diverged or stopped improving on validation).
    RESUMABLE_CHANGES = frozenset({"epochs", "time_budget_min", "threads", "sample_every", "checkpoint_every_min", "models_dir", "validate_every_min", "strategy", "lr"})

    def differences(self, other: TrainConfig) -> list[str]:
        mine, theirs = self.to_json(), other.to_json()
        return [key for key in mine if key not in self.RESUMABLE_CHANGES and mine[key] != theirs[key]]
