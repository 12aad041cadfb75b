"""Training: both architectures learn for an epoch, survive a kill, stop on NaN, refuse mismatches,
fall back from a corrupt checkpoint, name a corrupt image."""

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
from typer.testing import CliRunner
from waiting import wait_until

from colorizer_trainer.cli import app
from colorizer_trainer.config import TrainConfig
from colorizer_trainer.data import UnreadableImage
from colorizer_trainer.train import ConfigMismatch, CorruptCheckpoint, TrainingDiverged, prepare_run

STEPS_PER_EPOCH = 2  # the tiny dataset's 4 training photos in batches of 2


def _config(dataset: Path, run_dir: Path, **overrides) -> TrainConfig:
    # Without the COCO backbone and with one U-Net: these mechanics depend on neither, and each has tests of its own.
    options = dict(
        data=dataset, arch="unet", epochs=1, batch_size=2, run_dir=run_dir, sample_every=1, scene_encoder=False, members=1
    )
    return TrainConfig(**{**options, **overrides})


@pytest.mark.parametrize(
    "options",
    [
        {"arch": "unet"},
        {"arch": "unet", "head": "regression", "adversarial_weight": 1.0},
        {"arch": "unet", "head": "classes", "adversarial_weight": 1.0},
        {"arch": "unet", "head": "regression", "chroma_loss": "ciede2000"},
        {"arch": "unet", "members": 2, "adversarial_weight": 1.0},
        {"arch": "seed"},
    ],
    ids=["ours", "ours-regression-gan", "ours-classes-gan", "ours-ciede2000", "ours-members-gan", "seed"],
)
def test_each_architecture_trains_an_epoch_and_checkpoints_it(options, tiny_dataset, tmp_path):
    trainer = prepare_run(_config(tiny_dataset, tmp_path / "run", **options))
    before = [weights.copy() for weights in trainer.gan.generator.get_weights()]

    result = trainer.fit()

    assert (result.epochs_completed, result.steps) == (1, STEPS_PER_EPOCH)
    assert any(not np.array_equal(a, b) for a, b in zip(before, trainer.gan.generator.get_weights()))
    assert trainer.checkpoints.latest is not None
    assert len(list((tmp_path / "run" / "samples").glob("*.png"))) == 1
    assert list((tmp_path / "run" / "logs").iterdir())  # TensorBoard events


def test_no_adversarial_weight_trains_no_discriminator(tiny_dataset, tmp_path):
    trainer = prepare_run(_config(tiny_dataset, tmp_path / "run"))
    assert trainer.gan.discriminator is None
    assert "d/total" not in trainer.gan.train_step(next(iter(_one_batch(trainer))))


def _one_batch(trainer):
    from colorizer_trainer import data

    files = data.EpochSampler(trainer.config.data, crops_per_photo=1, seed=0).epoch_files(0)
    return data.training_batches(files, batch_size=2, seed=(0, 0), flips=True, crop=64, hints=True)


def test_training_scores_the_validation_split_into_a_learning_curve(tiny_dataset, tmp_path):
    trainer = prepare_run(_config(tiny_dataset, tmp_path / "run", epochs=2))
    trainer.fit()

    rows = (tmp_path / "run" / "validation.csv").read_text().splitlines()
    assert rows[0].startswith("step,cpu_minutes,images,psnr")
    assert len(rows) == 2 and rows[1].startswith(f"{2 * STEPS_PER_EPOCH},")  # once, at the end: 5 CPU-min never passed
    assert rows[1].split(",")[2] == "2"  # the 2 validation photos, not the test ones


def test_a_resumed_run_keeps_the_columns_its_learning_curve_began_with(tiny_dataset, tmp_path):
    prepare_run(_config(tiny_dataset, tmp_path / "run")).fit()
    table = tmp_path / "run" / "validation.csv"
    header, row = table.read_text().splitlines()
    columns = header.split(",")[:-1]  # as if an older trainer had written one column fewer
    table.write_text(",".join(columns) + "\n" + ",".join(row.split(",")[: len(columns)]) + "\n")

    prepare_run(_config(tiny_dataset, tmp_path / "run", epochs=2)).fit()

    rows = [line.split(",") for line in table.read_text().splitlines()]
    assert [len(cells) for cells in rows] == [len(columns)] * 3


def test_a_finished_run_resumes_where_it_stopped_when_given_more_epochs(tiny_dataset, tmp_path):
    prepare_run(_config(tiny_dataset, tmp_path / "run")).fit()

    resumed = prepare_run(_config(tiny_dataset, tmp_path / "run", epochs=2))

    assert int(resumed.counters.epoch) == 1
    assert resumed.fit().steps == 2 * STEPS_PER_EPOCH


def test_the_scene_encoders_backbone_trains_frozen_and_resumes_unchanged(tiny_dataset, tmp_path):
    def backbone(trainer):
        return [weights.numpy() for weights in trainer.gan.generator.get_layer("scene_encoder").weights]

    trainer = prepare_run(_config(tiny_dataset, tmp_path / "run", scene_encoder=True))
    published = backbone(trainer)
    trainer.fit()
    resumed = prepare_run(_config(tiny_dataset, tmp_path / "run", scene_encoder=True, epochs=2))

    assert int(resumed.counters.epoch) == 1
    for trained in (backbone(trainer), backbone(resumed)):
        assert all(np.array_equal(a, b) for a, b in zip(published, trained, strict=True))


def test_a_killed_run_resumes_from_its_last_checkpoint(tiny_dataset, tmp_path):
    run_dir, epochs = tmp_path / "run", 10  # enough that the first run is killed long before it ends
    command = [
        sys.executable, "-m", "trainer", "train", str(tiny_dataset), "--arch", "unet",
        "--epochs", str(epochs), "--batch-size", "2", "--threads", "1", "--no-scene-encoder", "--run-dir", str(run_dir), "--no-export",
    ]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint_index = run_dir / "checkpoints" / "checkpoint"
    try:
        wait_until(lambda: checkpoint_index.exists() or first.poll() is not None, "a checkpoint", timeout_s=300)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert checkpoint_index.exists(), "the first run never wrote a checkpoint"
    saved_step = int(tf.train.latest_checkpoint(str(run_dir / "checkpoints")).rsplit("-", 1)[1])
    assert saved_step < epochs * STEPS_PER_EPOCH, "the run finished before it could be killed"

    second = subprocess.run(command, capture_output=True, text=True, timeout=600)

    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stdout
    assert f"epoch 1/{epochs}" not in second.stderr  # it did not start over
    final_step = int(tf.train.latest_checkpoint(str(run_dir / "checkpoints")).rsplit("-", 1)[1])
    assert final_step == epochs * STEPS_PER_EPOCH


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_dataset, tmp_path, monkeypatch):
    prepare_run(_config(tiny_dataset, tmp_path / "run")).fit()
    trainer = prepare_run(_config(tiny_dataset, tmp_path / "run", epochs=2))
    good_checkpoint = trainer.checkpoints.latest
    honest_loss = trainer.architecture.generator_loss

    def poisoned_loss(*args, **kwargs):
        losses = honest_loss(*args, **kwargs)
        return {**losses, "total": losses["total"] * float("nan")}

    monkeypatch.setattr(trainer.architecture, "generator_loss", poisoned_loss)

    with pytest.raises(TrainingDiverged, match="not finite"):
        trainer.fit()
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")) == good_checkpoint


def test_the_cpu_time_budget_stops_training_and_is_counted_across_resumes(tiny_dataset, tmp_path):
    result = prepare_run(_config(tiny_dataset, tmp_path / "run", epochs=50, time_budget_min=1e-6)).fit()

    assert result.stopped_by_budget and result.steps == 1
    again = prepare_run(_config(tiny_dataset, tmp_path / "run", epochs=50, time_budget_min=1e-6)).fit()
    assert again.stopped_by_budget and again.steps == 1  # the budget was already spent


@pytest.mark.parametrize("arch", ["unet", "seed"])
def test_a_run_resumes_with_a_lower_learning_rate(arch, tiny_dataset, tmp_path):
    prepare_run(_config(tiny_dataset, tmp_path / "run", arch=arch, lr=1e-3)).fit()

    resumed = prepare_run(_config(tiny_dataset, tmp_path / "run", arch=arch, lr=1e-4, epochs=2))

    assert int(resumed.counters.epoch) == 1
    optimizers = [resumed.gan.generator_optimizer, resumed.gan.discriminator_optimizer]
    for optimizer in filter(None, optimizers):
        assert float(optimizer.learning_rate) == pytest.approx(1e-4)


def test_a_run_folder_refuses_a_different_configuration(tiny_dataset, tmp_path):
    prepare_run(_config(tiny_dataset, tmp_path / "run"))

    with pytest.raises(ConfigMismatch, match="batch_size"):
        prepare_run(_config(tiny_dataset, tmp_path / "run", batch_size=4))


def test_more_images_per_batch_than_the_training_split_is_refused(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="fewer images than one batch"):
        prepare_run(_config(tiny_dataset, tmp_path / "run", batch_size=64)).fit()


def test_our_generator_exports_a_moving_average_of_its_weights(tiny_dataset, tmp_path):
    trainer = prepare_run(_config(tiny_dataset, tmp_path / "run", ema_decay=0.5))
    initial = trainer.gan.generator.get_weights()
    trainer.fit()

    assert trainer.gan.serving_generator is trainer.gan.generator_average
    average, latest = trainer.gan.generator_average.get_weights(), trainer.gan.generator.get_weights()
    # Two steps with decay 0.5: average = initial / 4 + step1 / 4 + step2 / 2, neither the start nor the end.
    assert not np.allclose(average[0], latest[0]) and not np.allclose(average[0], initial[0])
    resumed = prepare_run(_config(tiny_dataset, tmp_path / "run", ema_decay=0.5))
    np.testing.assert_array_equal(resumed.gan.generator_average.get_weights()[0], average[0])


def test_the_seed_exports_its_raw_weights_as_the_seed_did(tiny_dataset, tmp_path):
    trainer = prepare_run(_config(tiny_dataset, tmp_path / "run", arch="seed"))
    assert trainer.gan.generator_average is None and trainer.gan.serving_generator is trainer.gan.generator


def test_a_checkpoint_missing_part_of_the_model_is_refused_not_half_restored(tiny_dataset, tmp_path):
    prepare_run(_config(tiny_dataset, tmp_path / "run", ema_decay=0.0)).fit()  # no weight average saved
    config_path = tmp_path / "run" / "config.json"
    config_path.write_text(config_path.read_text().replace('"ema_decay": 0.0', '"ema_decay": 0.9'))

    with pytest.raises(ConfigMismatch, match="does not hold everything"):
        prepare_run(_config(tiny_dataset, tmp_path / "run", ema_decay=0.9))


def test_a_corrupt_latest_checkpoint_falls_back_to_the_one_before(tiny_dataset, tmp_path, capsys):
    prepare_run(_config(tiny_dataset, tmp_path / "run", epochs=2)).fit()
    checkpoints = tmp_path / "run" / "checkpoints"
    latest = checkpoints / f"ckpt-{2 * STEPS_PER_EPOCH}.data-00000-of-00001"
    latest.write_bytes(latest.read_bytes()[:1000])  # a disk that filled up mid-write

    resumed = prepare_run(_config(tiny_dataset, tmp_path / "run", epochs=2))

    assert (int(resumed.counters.epoch), int(resumed.counters.step)) == (1, STEPS_PER_EPOCH)
    assert f"ckpt-{2 * STEPS_PER_EPOCH} cannot be read" in capsys.readouterr().out
    assert resumed.fit().steps == 2 * STEPS_PER_EPOCH
    (checkpoints / f"ckpt-{STEPS_PER_EPOCH}.index").write_bytes(b"garbage")
    (checkpoints / f"ckpt-{2 * STEPS_PER_EPOCH}.index").write_bytes(b"")
    with pytest.raises(CorruptCheckpoint, match="No checkpoint .* can be read"):
        prepare_run(_config(tiny_dataset, tmp_path / "run", epochs=2))


def test_a_corrupt_image_is_named_and_fails_the_same_way_on_resume(tiny_dataset, tmp_path):
    broken = tiny_dataset / "train_y" / "train01.png"
    broken.write_bytes(broken.read_bytes()[:200])  # truncated

    for _ in range(2):
        with pytest.raises(UnreadableImage, match=f"{broken}.*Delete it and its twin"):
            prepare_run(_config(tiny_dataset, tmp_path / "run")).fit()


def test_a_run_resumes_only_with_the_global_batch_it_began_with(tiny_dataset, tmp_path):
    prepare_run(_config(tiny_dataset, tmp_path / "run")).fit()
    record = tmp_path / "run" / "distribution.json"
    assert json.loads(record.read_text()) == {"global_batch_size": 2, "replicas": 1}
    record.write_text(json.dumps({"global_batch_size": 4, "replicas": 2}))  # as if begun on two replicas

    with pytest.raises(ConfigMismatch, match="global batch of 4 images"):
        prepare_run(_config(tiny_dataset, tmp_path / "run"))


def test_an_unknown_architecture_is_refused_before_anything_is_written(tmp_path):
    outcome = CliRunner().invoke(app, ["train", str(tmp_path / "data"), "--arch", "foo", "--run-dir", str(tmp_path / "run")])
    assert outcome.exit_code == 2
    assert "foo" in outcome.output
    assert not (tmp_path / "run").exists()
