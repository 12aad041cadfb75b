"""The batching queue: one worker thread owns the model calls; requests leave the queue in batches.

Requests wait in a bounded queue. A batch takes the oldest job and the oldest others that can
share its model call, as many as the largest of a few fixed sizes (powers of two up to
``max_batch``) they can fill; the rest wait for a later batch. So the model only ever sees those few
batch sizes (warmed up once, never traced again) and spends no compute on padding rows.

The delay adapts to the load. Before a batch leaves, it may wait for requests on their way (being
decoded: see ``arriving``), but only when waiting pays: when enough of them are coming to fill the
next larger batch size, and the last one needed is expected (from how long preparing has taken
lately) before ``max_delay_s`` has passed since the oldest job was queued (longer only while the
model is busy). A lone request never waits; nor does a batch that those on their way could not
enlarge (five ready and one coming still make a batch of four); under heavy load the queue is full
already, and the model never idles waiting for what could not arrive in time.

Each job names the model it was prepared for and carries that model's inputs for one example (the
gray photo; for a model that takes hints, its hint map too). Only jobs for the same model with
inputs of the same shapes share a batch: a request accepted before a reload finishes on the model
it started with, and photos rendered at different sizes go in separate model calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The queue holds ``max_size`` jobs already; the caller should come back later."""


class QueueClosed(Exception):
    """The queue was closed (the service is shutting down) before the job ran."""


class InferenceFailed(RuntimeError):
    """The model raised on the batch this job was part of."""


class BatchModel(Protocol):
    def predict(self, *batches: np.ndarray) -> np.ndarray: ...


@dataclass(eq=False)  # jobs are equal only to themselves
class _Job:
    model: BatchModel
    inputs: tuple[np.ndarray, ...]  # one example's model inputs, without the batch axis
    future: Future[np.ndarray]
    queued_at: float = field(default_factory=time.monotonic)

    def can_share_batch_with(self, other: _Job) -> bool:
        return self.model is other.model and [i.shape for i in self.inputs] == [i.shape for i in other.inputs]


PREPARE_SMOOTHING = 0.2  # weight of the newest preparation time in the moving average


def worth_waiting(
    ready: int, arriving_since: Collection[float], *, batch_sizes: tuple[int, ...], prepare_s: float, deadline: float
) -> bool:
    """Whether a batch of ``ready`` jobs should wait for jobs still being prepared.

    ``arriving_since`` holds when each of those started preparing, ``prepare_s`` how long preparing
    one takes (a recent average), ``deadline`` the latest the batch may leave. Waiting pays only when
    enough of them are coming to fill the next larger fixed size, and the last one of those needed is
    expected by ``deadline``; otherwise the batch leaves now at the size it can fill.
    """
    larger = [size for size in batch_sizes if size > ready]
    if not larger:
        return False  # the largest batch is full
    needed = larger[0] - ready
    if len(arriving_since) < needed:
        return False  # those coming cannot lift the batch to a larger model call
    last_needed_started = sorted(arriving_since)[needed - 1]
    return last_needed_started + prepare_s <= deadline


def fixed_batch_sizes(max_batch: int) -> tuple[int, ...]:
    """The batch sizes the model is called with: powers of two below ``max_batch``, then ``max_batch``."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1. Received: max_batch={max_batch}")
    sizes = []
    size = 1
    while size < max_batch:
        sizes.append(size)
        size *= 2
    return (*sizes, max_batch)


class BatchingQueue:
    """A bounded queue of model jobs served in batches by one worker thread.

    ``on_batch(images, seconds)`` is called after each successful model call (for metrics).
    """

    def __init__(
        self,
        *,
        max_batch: int,
        max_delay_s: float,
        max_size: int,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1. Received: max_size={max_size}")
        self.batch_sizes = fixed_batch_sizes(max_batch)
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.max_size = max_size
        self._on_batch = on_batch
        self._jobs: deque[_Job] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._closed_because = "The service is shutting down."
        self._arriving: dict[object, float] = {}  # a token per job being prepared: when it started
        self.prepare_s = 0.0  # how long preparing a job has taken lately (moving average), in seconds
        self._worker: threading.Thread | None = None

    @property
    def depth(self) -> int:
        """Jobs waiting for the model (not counting the batch being run)."""
        return len(self._jobs)

    @property
    def full(self) -> bool:
        """Whether ``max_size`` jobs are waiting or being prepared: beyond that, callers should refuse work.

        Counting those being prepared (decoded, or waiting for a thread to decode them) bounds the
        work admitted when decoding, not the model, is what cannot keep up.
        """
        return len(self._jobs) + len(self._arriving) >= self.max_size

    def start(self) -> None:
        if self._worker is not None:
            raise RuntimeError("The queue's worker was started already.")
        self._worker = threading.Thread(target=self._serve, name="colorizer-inference", daemon=True)
        self._worker.start()

    def close(self) -> None:
        """Stop the worker after its current batch; jobs still waiting fail with ``QueueClosed``."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._worker is not None:
            self._worker.join()
        self._fail_waiting(QueueClosed(self._closed_because))

    def submit(self, model: BatchModel, *inputs: np.ndarray) -> Future[np.ndarray]:
        """Queue one example (each of ``model``'s inputs for it); the future gets its row of the output."""
        with self._changed:
            if self._closed:
                raise QueueClosed(self._closed_because)
            if len(self._jobs) >= self.max_size:
                raise QueueFull(f"{len(self._jobs)} images are already waiting for the model.")
            job = _Job(model, inputs, Future())
            self._jobs.append(job)
            self._changed.notify()
        return job.future

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Mark a job as on its way, from before its input is prepared until it is submitted.

        Submit inside the block: the worker holds a batch open (up to ``max_delay_s``) only for jobs
        marked so, and learns from the time they take how long to expect the next ones.
        """
        token = object()
        with self._changed:
            self._arriving[token] = time.monotonic()
        try:
            yield
        finally:
            with self._changed:
                took = time.monotonic() - self._arriving.pop(token)
                self.prepare_s += PREPARE_SMOOTHING * (took - self.prepare_s)
                self._changed.notify()

    @property
    def alive(self) -> bool:
        """The worker is running (False before ``start``, after ``close``, and if it died)."""
        return self._worker is not None and self._worker.is_alive() and not self._closed

    def _serve(self) -> None:
        try:
            while (jobs := self._next_batch()) is not None:
                self._run(jobs)
        except BaseException:  # not raised on: nothing would catch it in this thread
            log.exception("The inference worker died; every job waiting fails and /healthz says so")
            with self._changed:
                self._closed, self._closed_because = True, "The inference worker died; the service must be restarted."
            self._fail_waiting(QueueClosed(self._closed_because))

    def _fail_waiting(self, error: Exception) -> None:
        while self._jobs:
            job = self._jobs.popleft()
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(error)

    def _next_batch(self) -> list[_Job] | None:
        """Wait for a job, and for those arriving while ``worth_waiting``; take it and its company."""
        with self._changed:
            while not self._jobs and not self._closed:
                self._changed.wait()
            if self._closed:
                return None
            first = self._jobs[0]
            deadline = first.queued_at + self.max_delay_s
            while (
                worth_waiting(
                    len(ready := self._batch_for(first)),
                    self._arriving.values(),
                    batch_sizes=self.batch_sizes,
                    prepare_s=self.prepare_s,
                    deadline=deadline,
                )
                and not self._closed
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            size = max(size for size in self.batch_sizes if size <= len(ready))
            taken = ready[:size]
            for job in taken:
                self._jobs.remove(job)
            return taken

    def _batch_for(self, first: _Job) -> list[_Job]:
        """The oldest jobs (``first`` among them) that can share ``first``'s model call, up to ``max_batch``."""
        company = [job for job in self._jobs if job.can_share_batch_with(first)]
        return company[: self.max_batch]

    def _run(self, jobs: list[_Job]) -> None:
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]  # drop abandoned ones
        if not jobs:
            return
        # Only when a client gave up on a job in this batch is it short of a fixed size: pad it.
        size = next(size for size in self.batch_sizes if size >= len(jobs))
        started = time.perf_counter()
        try:
            batches = [_stack([job.inputs[index] for job in jobs], size) for index in range(len(jobs[0].inputs))]
            output = jobs[0].model.predict(*batches)  # (size, ...)
            if len(output) != size:
                raise ValueError(f"the model returned {len(output)} results for a batch of {size}")
        except Exception as error:  # the worker must outlive any one bad batch
            log.exception("Inference failed on a batch of %d", len(jobs))
            message = f"The model failed on a batch of {len(jobs)} images: {error}"
            for job in jobs:
                job.future.set_exception(InferenceFailed(message))
            return
        if self._on_batch is not None:
            self._on_batch(len(jobs), time.perf_counter() - started)
        for job, row in zip(jobs, output[: len(jobs)], strict=True):
            job.future.set_result(row)


def _stack(examples: list[np.ndarray], size: int) -> np.ndarray:
    """The examples as one batch of ``size`` rows, zero-padded at the end."""
    batch = np.stack(examples)  # (n, ...)
    padding = np.zeros((size - len(examples), *batch.shape[1:]), batch.dtype)
    return np.concatenate([batch, padding])  # (size, ...)
