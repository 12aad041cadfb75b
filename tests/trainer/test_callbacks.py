"""The training loop's duties, each on its own: when it acts, and what it leaves alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from colorizer_trainer.callbacks import (
    CpuBudget,
    NanCheck,
    PeriodicCheckpoint,
    PeriodicValidation,
    SampleGrids,
    StepOutcome,
    TrainingDiverged,
)
from colorizer_trainer.checkpoints import RunCounters

FINITE = StepOutcome(losses={"g/total": 0.5}, save_agreed=False)


class Recorder:
    """Stands in for what a duty calls (a validation, a clock, checkpoints): counts the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, *args) -> None:
        self.calls.append(args)

    restart = save = __call__


def _counters(*, step: int = 0, epoch: int = 0, cpu_seconds: float = 0.0) -> RunCounters:
    counters = RunCounters()
    counters.step.assign(step)
    counters.epoch.assign(epoch)
    counters.cpu_seconds.assign(cpu_seconds)
    return counters


def test_the_budget_is_reached_before_a_step_once_its_cpu_minutes_are_spent():
    counters = _counters(cpu_seconds=59.0)
    budget = CpuBudget(counters, budget_min=1.0)

    budget.on_step_begin()
    assert not budget.reached
    counters.cpu_seconds.assign(60.0)  # as restored from a checkpoint: the budget counts across resumes
    budget.on_step_begin()
    assert budget.reached


def test_no_budget_is_never_reached():
    budget = CpuBudget(_counters(cpu_seconds=1e9), budget_min=None)
    budget.on_step_begin()
    assert not budget.reached


def test_a_loss_that_is_not_finite_stops_the_run_naming_the_loss_and_the_step():
    check = NanCheck(_counters(step=3, epoch=1), Path("run/checkpoints"))
    check.on_step_end(FINITE)

    with pytest.raises(TrainingDiverged, match=r"Loss d/total is not finite at step 3 \(epoch 2\).*run/checkpoints"):
        check.on_step_end(StepOutcome(losses={"g/total": 0.5, "d/total": float("inf")}, save_agreed=False))


def test_checkpoints_are_saved_when_the_workers_agree_and_at_every_epoch_end():
    checkpoints = Recorder()
    checkpointing = PeriodicCheckpoint(checkpoints, _counters(step=7), every_min=10)

    checkpointing.on_step_end(FINITE)
    assert checkpoints.calls == []
    checkpointing.on_step_end(StepOutcome(losses={}, save_agreed=True))
    checkpointing.on_epoch_end(last=False)
    assert checkpoints.calls == [(7,), (7,)]


def test_validation_runs_every_few_cpu_minutes_leaving_itself_out_of_the_budget():
    counters, validate, clock = _counters(cpu_seconds=30.0), Recorder(), Recorder()
    validation = PeriodicValidation(validate, counters, clock, every_min=1)

    validation.on_step_end(FINITE)
    assert validate.calls == []
    counters.cpu_seconds.assign(61.0)
    validation.on_step_end(FINITE)
    validation.on_step_end(FINITE)  # the next is due at 120 s
    assert len(validate.calls) == 1 and len(clock.calls) == 1


def test_validation_runs_once_more_at_the_end_unless_it_just_ran():
    counters, validate = _counters(step=4, cpu_seconds=30.0), Recorder()
    validation = PeriodicValidation(validate, counters, Recorder(), every_min=1)

    counters.cpu_seconds.assign(61.0)
    validation.on_step_end(FINITE)
    validation.on_train_end()
    assert len(validate.calls) == 1
    counters.step.assign(5)
    validation.on_train_end()
    assert len(validate.calls) == 2


def test_a_worker_that_does_not_score_still_leaves_validation_time_out_of_the_budget():
    counters, clock = _counters(cpu_seconds=30.0), Recorder()
    validation = PeriodicValidation(None, counters, clock, every_min=1)

    counters.cpu_seconds.assign(61.0)
    validation.on_step_end(FINITE)
    validation.on_train_end()
    assert len(clock.calls) == 1


@pytest.mark.parametrize(
    ("epoch", "last", "drawn"),
    [(1, False, False), (2, False, True), (3, True, True)],
    ids=["between", "every-second-epoch", "where-the-run-stops"],
)
def test_sample_grids_are_drawn_every_few_epochs_and_where_the_run_stops(epoch, last, drawn, monkeypatch):
    grids = SampleGrids(None, _counters(epoch=epoch), (None, None), Path("samples"), every=2)
    monkeypatch.setattr(grids, "save", Recorder())

    grids.on_epoch_end(last=last)

    assert bool(grids.save.calls) == drawn
