"""The training loop's duties besides the step, each a small object with ``keras.callbacks.Callback``'s
hooks: the CPU-time budget, the NaN check, periodic checkpoints, the progress bar, TensorBoard,
sample grids and periodic validation.

Under a ``tf.distribute`` strategy every worker runs the budget, the NaN check, the checkpoints and
the validation schedule, deciding on all-reduced values so all decide alike; only the chief shows
progress, logs, draws samples and scores validation.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
from tqdm import tqdm

from colorizer_trainer import evaluate, samples
from colorizer_trainer.checkpoints import Checkpoints, RunCounters
from colorizer_trainer.step import GANStep

VALIDATION_FILE = "validation.csv"
VALIDATION_PHOTO_CROPS = 2  # files of each source photo scored at each validation


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class StepOutcome:
    losses: dict[str, float]  # summed over replicas
    save_agreed: bool  # some worker's clock says it is time to checkpoint: all save together


class Callback:
    """The hooks the loop calls, in this order; each does nothing unless a duty overrides it."""

    def on_epoch_begin(self) -> None: ...

    def on_step_begin(self) -> None: ...

    def on_step_end(self, outcome: StepOutcome) -> None: ...

    def on_epoch_end(self, *, last: bool) -> None:
        """``last``: the loop stops after this epoch (its final one, or the budget is spent)."""

    def on_train_end(self) -> None: ...


class CallbackList(Callback):
    """Calls each callback's hook in the list's order."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.callbacks = list(callbacks)

    def on_epoch_begin(self) -> None:
        for callback in self.callbacks:
            callback.on_epoch_begin()

    def on_step_begin(self) -> None:
        for callback in self.callbacks:
            callback.on_step_begin()

    def on_step_end(self, outcome: StepOutcome) -> None:
        for callback in self.callbacks:
            callback.on_step_end(outcome)

    def on_epoch_end(self, *, last: bool) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(last=last)

    def on_train_end(self) -> None:
        for callback in self.callbacks:
            callback.on_train_end()


class CpuClock:
    """This process's CPU time spent training, lap by lap (what the budget counts)."""

    def __init__(self) -> None:
        self._mark = time.process_time()

    def lap(self) -> float:
        """CPU seconds since the last lap (or restart)."""
        now = time.process_time()
        spent, self._mark = now - self._mark, now
        return spent

    def restart(self) -> None:
        """Leave the time since the last lap out of the next one (it was not spent training)."""
        self._mark = time.process_time()


class CpuBudget(Callback):
    """Stops the run, before a step, once ``budget_min`` CPU-minutes are spent, counted across resumes."""

    def __init__(self, counters: RunCounters, budget_min: float | None) -> None:
        self.counters = counters
        self.budget_min = budget_min
        self.reached = False

    def on_step_begin(self) -> None:
        spent = float(self.counters.cpu_seconds)
        self.reached = self.budget_min is not None and spent >= self.budget_min * 60


class NanCheck(Callback):
    """Stops the run, without saving, at the first loss that is not finite (``TerminateOnNaN``)."""

    def __init__(self, counters: RunCounters, checkpoint_dir: Path) -> None:
        self.counters = counters
        self.checkpoint_dir = checkpoint_dir

    def on_step_end(self, outcome: StepOutcome) -> None:
        bad = [name for name, value in outcome.losses.items() if not math.isfinite(value)]
        if bad:
            raise TrainingDiverged(
                f"Loss {', '.join(bad)} is not finite at step {int(self.counters.step)} "
                f"(epoch {int(self.counters.epoch) + 1}); stopped without saving. "
                f"The last good checkpoint is in {self.checkpoint_dir}: resume with a lower --lr."
            )


class PeriodicCheckpoint(Callback):
    """Checkpoints at each epoch's end, and within one when the workers agree ``every_min`` minutes passed."""

    def __init__(self, checkpoints: Checkpoints, counters: RunCounters, every_min: float) -> None:
        self.checkpoints = checkpoints
        self.counters = counters
        self.every_s = every_min * 60
        self._last_save = time.monotonic()

    def due(self) -> bool:
        """This worker's own view, which the step all-reduces into ``StepOutcome.save_agreed``."""
        return time.monotonic() - self._last_save > self.every_s

    def on_step_end(self, outcome: StepOutcome) -> None:
        if outcome.save_agreed:
            self._save()

    def on_epoch_end(self, *, last: bool) -> None:
        self._save()

    def _save(self) -> None:
        self.checkpoints.save(int(self.counters.step))
        self._last_save = time.monotonic()


class ProgressBar(Callback):
    """A tqdm bar per epoch, in images, with the total losses."""

    def __init__(self, counters: RunCounters, *, epochs: int, steps_per_epoch: int, global_batch_size: int) -> None:
        self.counters = counters
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.global_batch_size = global_batch_size
        self.bar: tqdm | None = None

    @property
    def images_per_second(self) -> float | None:
        return self.bar.format_dict.get("rate") if self.bar is not None else None

    def on_epoch_begin(self) -> None:
        self.bar = tqdm(
            total=self.steps_per_epoch * self.global_batch_size,
            initial=int(self.counters.step_in_epoch) * self.global_batch_size,
            desc=f"epoch {int(self.counters.epoch) + 1}/{self.epochs}",
            unit="img",
            dynamic_ncols=True,
        )

    def on_step_end(self, outcome: StepOutcome) -> None:
        self.bar.update(self.global_batch_size)
        self.bar.set_postfix({name: f"{value:.4f}" for name, value in outcome.losses.items() if name.endswith("total")})

    def on_epoch_end(self, *, last: bool) -> None:
        self.bar.close()


class TensorBoard(Callback):
    """Each step's losses and the images per second, as TensorBoard scalars in ``log_dir``."""

    def __init__(self, log_dir: Path, counters: RunCounters, progress: ProgressBar) -> None:
        self.writer = tf.summary.create_file_writer(str(log_dir))
        self.counters = counters
        self.progress = progress

    def on_step_end(self, outcome: StepOutcome) -> None:
        with self.writer.as_default(step=int(self.counters.step)):
            for name, value in outcome.losses.items():
                tf.summary.scalar(name, value)
            rate = self.progress.images_per_second
            if rate:
                tf.summary.scalar("images_per_second", rate)

    def on_train_end(self) -> None:
        self.writer.flush()


class SampleGrids(Callback):
    """A PNG grid of validation photos (gray | ours | truth) every ``every`` epochs and where the run stops."""

    def __init__(
        self, gan: GANStep, counters: RunCounters, photos: tuple[tf.Tensor, tf.Tensor], folder: Path, *, every: int
    ) -> None:
        self.gan = gan
        self.counters = counters
        self.gray, self.rgb = photos
        self.folder = folder
        self.every = every

    def on_epoch_end(self, *, last: bool) -> None:
        if last or int(self.counters.epoch) % self.every == 0:
            self.save()

    def save(self) -> Path:
        predicted = self.gan.predict_rgb(self.gray).numpy()
        rows = [
            [samples.to_image(g), samples.to_image(p), samples.to_image(t)]
            for g, p, t in zip(self.gray.numpy(), predicted, self.rgb.numpy())
        ]
        path = self.folder / f"epoch_{int(self.counters.epoch):04d}_step_{int(self.counters.step):06d}.png"
        return samples.save_grid(rows, path, labels=("gray", self.gan.architecture.name, "truth"))


class Validation:
    """Scores the served weights on a split as the service would: a row of ``validation.csv``,
    TensorBoard scalars (when given a writer) and a line on the console."""

    def __init__(self, gan: GANStep, counters: RunCounters, data_dir: Path, split: str, run_dir: Path, writer=None):
        self.gan = gan
        self.counters = counters
        self.data_dir = data_dir
        self.split = split
        self.table = run_dir / VALIDATION_FILE
        self.writer = writer

    def __call__(self) -> dict[str, float]:
        step = int(self.counters.step)
        scored = evaluate.score(
            evaluate.in_memory_colorizer(self.gan.predict_rgb, self.gan.architecture.native_size),
            self.data_dir,
            split=self.split,
            per_photo=VALIDATION_PHOTO_CROPS,
            label=f"{self.split} at step {step}",
            keep=0,
        )
        metrics = scored.metrics
        row = {"step": step, "cpu_minutes": round(float(self.counters.cpu_seconds) / 60, 2), **metrics}
        self._append(row)
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for name, value in metrics.items():
                    tf.summary.scalar(f"{self.split}/{name}", value)
        tqdm.write(
            f"{self.split} at {row['cpu_minutes']:.1f} CPU-min: ΔE2000 {metrics['ciede2000']:.2f}, "
            f"PSNR {metrics['psnr']:.2f}, colourfulness/truth {metrics['colorfulness_ratio']:.2f}"
        )
        return metrics

    def _append(self, row: dict[str, float]) -> None:
        """A row of the table; a run resumed by a newer trainer keeps the columns its table began with."""
        columns = list(row)
        if self.table.is_file() and self.table.stat().st_size:
            with self.table.open(newline="") as file:
                columns = next(csv.reader(file))
        with self.table.open("a", newline="") as file:
            table = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
            if file.tell() == 0:
                table.writeheader()
            table.writerow(row)


class PeriodicValidation(Callback):
    """Validates every ``every_min`` CPU-minutes of training and once at the end (unless just done).

    Every worker keeps the schedule, so all leave the same time out of the budget; ``validate`` is
    None on the workers that do not score.
    """

    def __init__(self, validate: Validation | None, counters: RunCounters, clock: CpuClock, every_min: float) -> None:
        self.validate = validate
        self.counters = counters
        self.clock = clock
        self.every_s = every_min * 60
        self._next = self._following()
        self._last_validated_step = -1

    def _following(self) -> float:
        return (math.floor(float(self.counters.cpu_seconds) / self.every_s) + 1) * self.every_s

    def on_step_end(self, outcome: StepOutcome) -> None:
        if float(self.counters.cpu_seconds) >= self._next:
            self._validate()
            self.clock.restart()  # validation is not training: it is left out of the budget
            self._next = self._following()

    def on_train_end(self) -> None:
        if self._last_validated_step != int(self.counters.step):
            self._validate()

    def _validate(self) -> None:
        if self.validate is not None:
            self.validate()
            self._last_validated_step = int(self.counters.step)
