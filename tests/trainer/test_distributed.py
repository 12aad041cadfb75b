"""Distributed training: MirroredStrategy over two CPU devices, two workers on loopback; kill, resume, export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from photo_folders import write_tiny_dataset
from ports import free_port
from waiting import wait_until

from colorizer_core.inference import load_model
from colorizer_trainer import data, distribution
from colorizer_trainer.config import TrainConfig

GLOBAL_BATCH = 4  # 2 per replica, 2 replicas
STEPS_PER_EPOCH = 2  # 8 training photos
# Logical CPU devices must be configured before TensorFlow starts, so each run is a process of its own.
LAUNCH = """
import sys
import tensorflow as tf
devices = int(sys.argv.pop(1))
if devices > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
from colorizer_trainer.cli import main
main()
"""
CHECKPOINT_WAIT_S = 300
PEER_EXIT_WAIT_S = 120


@pytest.fixture
def eight_photos(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "data", train=8)


def _train(dataset: Path, root: Path, *, epochs: int, devices: int = 1, strategy: str = "auto", env: dict | None = None):
    command = [
        sys.executable, "-c", LAUNCH, str(devices), "train", str(dataset), "--epochs", str(epochs), "--batch-size", "2",
        "--threads", "1", "--strategy", strategy, "--run-dir", str(root / "run"), "--models-dir", str(root / "models"),
        "--validate-every-min", "100", "--members", "1",  # one U-Net: replicas share a step alike whatever the model
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=os.environ | (env or {}), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_checkpoint(root: Path, processes: list[subprocess.Popen]) -> int:
    index = root / "run" / "checkpoints" / "checkpoint"
    try:
        wait_until(
            lambda: index.exists() or any(p.poll() is not None for p in processes), "a checkpoint", CHECKPOINT_WAIT_S
        )
    except TimeoutError:
        for process in processes:
            process.kill()
        raise
    assert index.exists(), "no checkpoint was written: " + "".join(p.communicate()[1][-2000:] for p in processes)
    return int(tf.train.latest_checkpoint(str(root / "run" / "checkpoints")).rsplit("-", 1)[1])


def _finish(process: subprocess.Popen) -> str:
    stdout, stderr = process.communicate(timeout=400)
    assert process.returncode == 0, stderr[-3000:]
    return stdout


def _assert_service_loads(models_root: Path) -> None:
    assert sorted(path.name for path in models_root.iterdir()) == ["1"]  # one export, no staging left
    model = load_model(models_root)
    assert model.predict(np.zeros((1, 200, 200, 1), np.float32)).shape == (1, 200, 200, 3)


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices_resumes_after_a_kill_and_exports(eight_photos, tmp_path):
    first = _train(eight_photos, tmp_path, epochs=40, devices=2, strategy="mirrored")
    saved_step = _wait_for_checkpoint(tmp_path, [first])
    first.kill()
    first.communicate()
    assert saved_step % STEPS_PER_EPOCH == 0 and saved_step < 40 * STEPS_PER_EPOCH
    epochs = saved_step // STEPS_PER_EPOCH + 1

    output = _finish(_train(eight_photos, tmp_path, epochs=epochs, devices=2, strategy="mirrored"))

    assert f"resumed from {tmp_path / 'run' / 'checkpoints' / f'ckpt-{saved_step}'}" in output
    assert f"done: {epochs} epochs, {epochs * STEPS_PER_EPOCH} steps" in output
    assert json.loads((tmp_path / "run" / "distribution.json").read_text()) == {"global_batch_size": 4, "replicas": 2}
    _assert_service_loads(tmp_path / "models")


@pytest.mark.slow
def test_two_workers_on_loopback_resume_after_one_is_killed_and_the_chief_exports_once(eight_photos, tmp_path):
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]

    def cluster(epochs: int) -> list[subprocess.Popen]:
        tf_config = [{"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}} for i in range(2)]
        return [_train(eight_photos, tmp_path, epochs=epochs, env={"TF_CONFIG": json.dumps(c)}) for c in tf_config]

    chief, other = cluster(epochs=40)
    saved_step = _wait_for_checkpoint(tmp_path, [chief, other])
    os.kill(other.pid, signal.SIGKILL)
    other.communicate()
    try:  # the chief notices its peer has gone (TensorFlow's heartbeats) and stops, not stuck in a collective
        chief.communicate(timeout=PEER_EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        chief.kill()
        chief.communicate()
        pytest.fail(f"the chief was still running {PEER_EXIT_WAIT_S} s after its peer was killed")
    assert chief.returncode != 0
    epochs = saved_step // STEPS_PER_EPOCH + 1

    outputs = [_finish(process) for process in cluster(epochs=epochs)]

    for output in outputs:  # both resumed from the chief's checkpoint and took the same steps
        assert f"resumed from {tmp_path / 'run' / 'checkpoints' / f'ckpt-{saved_step}'}" in output
        assert f"done: {epochs} epochs, {epochs * STEPS_PER_EPOCH} steps" in output
    assert "exported" in outputs[0] and "exported" not in outputs[1]
    checkpoints = tmp_path / "run" / "checkpoints"
    assert not [path.name for path in checkpoints.iterdir() if path.is_dir()]  # worker 1's temporary folder is gone
    assert json.loads((tmp_path / "run" / "distribution.json").read_text()) == {"global_batch_size": 4, "replicas": 2}
    _assert_service_loads(tmp_path / "models")


def test_each_global_batch_is_split_between_pipelines_in_consecutive_shares():
    shares = [data.pipeline_share(4, 16, global_batch_size=4, pipeline=p, pipelines=2) for p in range(2)]

    assert shares == [[4, 5, 8, 9, 12, 13], [6, 7, 10, 11, 14, 15]]
    with pytest.raises(ValueError, match="split evenly"):
        data.pipeline_share(0, 6, global_batch_size=3, pipeline=0, pipelines=2)


def test_a_file_gets_the_same_augmentation_whichever_replica_reads_it(eight_photos):
    files = data.EpochSampler(eight_photos, crops_per_photo=2, seed=0).epoch_files(0)
    options = dict(seed=(0, 3), flips=True, crop=32, hints=True)
    (whole,) = data.training_batches(files[:4], batch_size=4, **options).take(1)
    (second_half,) = data.training_batches(files[2:4], indices=[2, 3], batch_size=2, **options).take(1)

    for full, part in zip(whole, second_half):
        np.testing.assert_array_equal(full[2:], part)


def test_auto_picks_the_default_strategy_on_one_device_and_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    strategy = distribution.choose_strategy("auto")

    assert strategy.num_replicas_in_sync == 1 and distribution.is_chief(strategy)
    assert distribution.checkpoint_write_dir(Path("run/checkpoints"), strategy) == Path("run/checkpoints")
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        distribution.choose_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not a JSON object"):
        distribution.choose_strategy("auto")


def test_an_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="`strategy` must be one of auto, default, mirrored, multi-worker"):
        TrainConfig(data=Path("data"), strategy="parameter-server")
