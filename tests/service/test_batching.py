"""The batching queue, driven directly with a model that can be held busy at will."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from colorizer_service.batching import (
    BatchingQueue,
    InferenceFailed,
    QueueClosed,
    QueueFull,
    fixed_batch_sizes,
    worth_waiting,
)

WAIT_S = 30.0


class HeldModel:
    """Multiplies its input by ``factor``; records each batch; waits at ``gate`` so the worker stays busy."""

    def __init__(self, factor: float = 2.0, *, fail_calls: frozenset[int] = frozenset()) -> None:
        self.factor = factor
        self.fail_calls = fail_calls
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batch_shapes: list[tuple[int, ...]] = []
        self.extra_shapes: list[list[tuple[int, ...]]] = []  # of each call's further inputs

    def predict(self, batch: np.ndarray, *extra: np.ndarray) -> np.ndarray:
        self.entered.set()
        assert self.gate.wait(WAIT_S), "the test never opened the gate"
        self.batch_shapes.append(batch.shape)
        self.extra_shapes.append([inputs.shape for inputs in extra])
        if len(self.batch_shapes) in self.fail_calls:
            raise RuntimeError("out of memory (on purpose)")
        return batch * self.factor + sum(inputs.sum(axis=-1, keepdims=True) for inputs in extra)


@pytest.fixture
def queue() -> Iterator[BatchingQueue]:
    queue = BatchingQueue(max_batch=8, max_delay_s=0.0, max_size=8)
    queue.start()
    yield queue
    queue.close()


def item(value: float, side: int = 2) -> np.ndarray:
    return np.full((side, side, 1), value, np.float32)


def hold_worker(queue: BatchingQueue, model: HeldModel) -> None:
    """Give the worker one job and wait until it is stuck in ``model.predict``."""
    queue.submit(model, item(0.0))
    assert model.entered.wait(WAIT_S)


@pytest.mark.parametrize(("max_batch", "sizes"), [(1, (1,)), (8, (1, 2, 4, 8)), (6, (1, 2, 4, 6))])
def test_the_model_sees_a_few_fixed_batch_sizes(max_batch: int, sizes: tuple[int, ...]) -> None:
    assert fixed_batch_sizes(max_batch) == sizes


def test_waiting_jobs_leave_in_batches_of_the_fixed_sizes_oldest_first(queue: BatchingQueue) -> None:
    model = HeldModel()
    hold_worker(queue, model)
    futures = [queue.submit(model, item(value)) for value in range(1, 8)]
    model.gate.set()
    assert [future.result(WAIT_S)[0, 0, 0] for future in futures] == [2.0 * value for value in range(1, 8)]
    assert [shape[0] for shape in model.batch_shapes] == [1, 4, 2, 1]  # seven jobs: no padding rows


@pytest.fixture
def patient_queue() -> Iterator[BatchingQueue]:
    """A queue whose jobs would wait an hour for company: any test that finishes never waited."""
    queue = BatchingQueue(max_batch=4, max_delay_s=3600.0, max_size=4)
    queue.start()
    yield queue
    queue.close()


def test_a_lone_job_runs_without_waiting_for_company(patient_queue: BatchingQueue) -> None:
    model = HeldModel()
    model.gate.set()
    assert patient_queue.submit(model, item(1.0)).result(WAIT_S)[0, 0, 0] == 2.0


def test_a_job_waits_for_others_being_prepared_and_they_share_a_batch(patient_queue: BatchingQueue) -> None:
    model = HeldModel()
    model.gate.set()
    with patient_queue.arriving():  # a second request is being decoded
        first = patient_queue.submit(model, item(1.0))
        second = patient_queue.submit(model, item(2.0))
    assert [first.result(WAIT_S)[0, 0, 0], second.result(WAIT_S)[0, 0, 0]] == [2.0, 4.0]
    assert [shape[0] for shape in model.batch_shapes] == [2]


def test_batch_short_of_a_fixed_size_because_a_client_left_is_padded(queue: BatchingQueue) -> None:
    model = HeldModel()
    hold_worker(queue, model)
    futures = [queue.submit(model, item(1.0)) for _ in range(4)]
    assert futures[0].cancel()
    model.gate.set()
    assert all(future.result(WAIT_S)[0, 0, 0] == 2.0 for future in futures[1:])
    assert [shape[0] for shape in model.batch_shapes] == [1, 4]  # three jobs and one row of padding


def test_full_queue_refuses_at_once(queue: BatchingQueue) -> None:
    model = HeldModel()
    hold_worker(queue, model)
    waiting = [queue.submit(model, item(1.0)) for _ in range(queue.max_size)]
    with pytest.raises(QueueFull):
        queue.submit(model, item(1.0))
    model.gate.set()
    assert all(future.result(WAIT_S) is not None for future in waiting)


def test_failed_batch_fails_each_of_its_jobs_and_the_worker_goes_on(queue: BatchingQueue) -> None:
    model = HeldModel(fail_calls=frozenset({2}))
    hold_worker(queue, model)
    doomed = [queue.submit(model, item(1.0)) for _ in range(4)]  # one batch: the model's second call
    model.gate.set()
    for future in doomed:
        with pytest.raises(InferenceFailed, match="out of memory"):
            future.result(WAIT_S)
    assert queue.submit(model, item(5.0)).result(WAIT_S)[0, 0, 0] == 10.0


def test_a_batch_never_mixes_models(queue: BatchingQueue) -> None:
    old, new = HeldModel(factor=2.0), HeldModel(factor=3.0)
    new.gate.set()
    hold_worker(queue, old)
    before = queue.submit(old, item(1.0))
    after = queue.submit(new, item(1.0))
    late = queue.submit(old, item(1.0))
    old.gate.set()
    assert [future.result(WAIT_S)[0, 0, 0] for future in (before, after, late)] == [2.0, 3.0, 2.0]
    assert [shape[0] for shape in new.batch_shapes] == [1]


def test_jobs_with_inputs_of_other_shapes_wait_for_a_batch_of_their_own(queue: BatchingQueue) -> None:
    model = HeldModel()
    hold_worker(queue, model)
    sides = [2, 3, 2, 3, 3, 2]  # e.g. photos rendered at two sizes, arriving mixed
    futures = [queue.submit(model, item(1.0, side)) for side in sides]
    model.gate.set()
    assert [future.result(WAIT_S).shape for future in futures] == [(side, side, 1) for side in sides]
    # The oldest job leads each batch, with the oldest of its shape: two of three fill a fixed size.
    assert model.batch_shapes[1:] == [(2, 2, 2, 1), (2, 3, 3, 1), (1, 3, 3, 1), (1, 2, 2, 1)]


def test_each_of_a_jobs_inputs_reaches_the_model_as_its_own_batch(queue: BatchingQueue) -> None:
    model = HeldModel()
    hold_worker(queue, model)
    hints = np.ones((2, 2, 4), np.float32)  # a second input, like a hint map
    futures = [queue.submit(model, item(1.0), hints) for _ in range(4)]
    assert futures[1].cancel()  # so the batch is padded: every input alike
    model.gate.set()
    assert all(futures[index].result(WAIT_S)[0, 0, 0] == 2.0 + 4.0 for index in (0, 2, 3))
    assert model.batch_shapes[1:] == [(4, 2, 2, 1)] and model.extra_shapes[1:] == [[(4, 2, 2, 4)]]


def test_abandoned_job_is_never_run(queue: BatchingQueue) -> None:
    model = HeldModel()
    hold_worker(queue, model)
    abandoned = queue.submit(model, item(1.0))
    assert abandoned.cancel()
    model.gate.set()
    assert queue.submit(model, item(1.0)).result(WAIT_S) is not None
    assert [shape[0] for shape in model.batch_shapes] == [1, 1]


def test_close_fails_the_jobs_still_waiting() -> None:
    queue = BatchingQueue(max_batch=4, max_delay_s=0.0, max_size=4)  # never started: nothing runs
    waiting = queue.submit(HeldModel(), item(1.0))
    queue.close()
    with pytest.raises(QueueClosed):
        waiting.result(WAIT_S)
    with pytest.raises(QueueClosed):
        queue.submit(HeldModel(), item(1.0))


@pytest.mark.parametrize(
    ("ready", "arriving_since", "expected"),
    [
        (1, [], False),  # nobody coming: a lone job never waits
        (1, [0.0], True),  # one coming in time makes a batch of two
        (1, [0.05], False),  # ... but not if it is expected after the deadline (0.05 + 0.02 > 0.06)
        (2, [0.0], False),  # two ready and one coming still make a batch of two
        (2, [0.0, 0.01], True),  # two coming in time make a batch of four
        (2, [0.0, 0.05], False),  # the second of those needed is late
        (5, [0.0, 0.0], False),  # five and two make seven: still a batch of four
        (5, [0.0, 0.0, 0.03], True),  # five and three make eight
        (8, [0.0] * 8, False),  # the largest batch is full
    ],
)
def test_a_batch_waits_only_for_company_that_fills_a_larger_batch_in_time(
    ready: int, arriving_since: list[float], expected: bool
) -> None:
    waits = worth_waiting(ready, arriving_since, batch_sizes=(1, 2, 4, 8), prepare_s=0.02, deadline=0.06)
    assert waits is expected


def test_preparing_time_is_learned_from_the_jobs_that_arrive(patient_queue: BatchingQueue) -> None:
    assert patient_queue.prepare_s == 0.0
    with patient_queue.arriving():
        time.sleep(0.05)
    assert 0.0 < patient_queue.prepare_s <= 0.05


def test_a_batch_that_those_coming_cannot_enlarge_leaves_without_waiting(patient_queue: BatchingQueue) -> None:
    model = HeldModel()
    hold_worker(patient_queue, model)
    with patient_queue.arriving():  # one more is being decoded: two and one still make a batch of two
        futures = [patient_queue.submit(model, item(value)) for value in (1.0, 2.0)]
        model.gate.set()
        assert [future.result(WAIT_S)[0, 0, 0] for future in futures] == [2.0, 4.0]  # before the third came
    assert [shape[0] for shape in model.batch_shapes] == [1, 2]


def test_jobs_being_prepared_count_towards_a_full_queue(queue: BatchingQueue) -> None:
    model = HeldModel()
    hold_worker(queue, model)
    for value in range(5):
        queue.submit(model, item(value))
    with queue.arriving(), queue.arriving():
        assert not queue.full  # 5 waiting + 2 being prepared < 8
        with queue.arriving():
            assert queue.full
    assert not queue.full
    model.gate.set()
