"""Which ``tf.distribute`` strategy trains, and this process's part in it.

- ``default``: one device (TensorFlow's default strategy).
- ``mirrored``: ``MirroredStrategy`` over every local GPU (every local CPU device when there is none,
  which tests and benchmarks use with logical CPU devices).
- ``multi-worker``: ``MultiWorkerMirroredStrategy`` over the processes that ``TF_CONFIG`` names,
  one per machine, each with all of its GPUs.
- ``auto``: multi-worker when ``TF_CONFIG`` names a cluster, mirrored with two or more GPUs, else default.

Every worker runs the same loop and writes checkpoints, as TensorFlow requires; only the chief's
are kept (the others go to a temporary folder of their own, removed after each save) and only the
chief exports, validates and writes logs and samples. ``MultiWorkerMirroredStrategy`` must be
created before TensorFlow runs any op, so choose the strategy first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import tensorflow as tf

from colorizer_trainer.config import STRATEGIES, StrategyName

# Errors a collective raises when another worker has gone (killed, crashed, network lost).
PEER_LOST_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
    tf.errors.AbortedError,
)


class WorkerLost(RuntimeError):
    """Another worker of the cluster stopped; every worker must be restarted to resume."""


def cluster_spec() -> dict:
    """The ``cluster`` of ``TF_CONFIG``, or ``{}`` when it names none."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw).get("cluster") or {}
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(f"TF_CONFIG is not a JSON object with a `cluster`. Received: TF_CONFIG={raw!r}") from None


def choose_strategy(name: StrategyName = "auto") -> tf.distribute.Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {', '.join(STRATEGIES)}. Received: strategy={name!r}")
    cluster = cluster_spec()
    if name == "multi-worker" or (name == "auto" and cluster):
        if not cluster:
            raise ValueError("`--strategy multi-worker` needs TF_CONFIG naming the cluster and this worker (docs/deploy.md).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored" or (name == "auto" and len(tf.config.list_physical_devices("GPU")) > 1):
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.get_strategy()


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process keeps checkpoints, exports, validates and logs (TensorFlow's own answer)."""
    return bool(strategy.extended.should_checkpoint)


def worker_name(strategy: tf.distribute.Strategy) -> str:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "local"
    return f"{resolver.task_type}-{resolver.task_id}"


def checkpoint_write_dir(directory: Path, strategy: tf.distribute.Strategy) -> Path:
    """Where this process saves: the chief into ``directory``; any other worker into a temporary
    folder of its own beside them, which the caller removes after each save."""
    if is_chief(strategy):
        return directory
    return directory / f".{worker_name(strategy)}-temporary"
