"""Export: a SavedModel version per the contract, written atomically, that TensorFlow serves."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from photo_folders import red_cutout, write_photos, write_tiny_dataset
from pydantic import ValidationError
from served import serve, served_ab
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from typer.testing import CliRunner

from colorizer_core import contract, imaging
from colorizer_core.hints import Hint
from colorizer_core.metadata import FORMAT_VERSION, ModelMetadata
from colorizer_trainer import color
from colorizer_trainer.cli import app
from colorizer_trainer.config import CHROMA_GAINS, CHROMA_THRESHOLDS, TEMPERATURES, TrainConfig
from colorizer_trainer.dataset.build import dataset_fingerprint
from colorizer_trainer.export import STALE_STAGING_S, export_model, remove_stale_staging
from colorizer_trainer.gans import get_architecture
from colorizer_trainer.runs import (
    GRAY_LABEL,
    choose_decoding,
    export_run,
    export_version_again,
    pick_decoding,
    train_and_export,
)
from colorizer_trainer.train import prepare_run


def _train(dataset: Path, tmp_path: Path, arch: str, **overrides) -> Path:
    """One epoch, exported; without the COCO backbone unless asked (untrained, it saturates the chroma), and with
    one U-Net at half width unless asked (exporting several is tested on its own; after one epoch a narrower one
    leaves a photo nearly gray, and these tests need the model's own colour to tell it from the hints')."""
    config = TrainConfig(
        data=dataset, arch=arch, epochs=1, batch_size=2, run_dir=tmp_path / f"run_{arch}",
        models_dir=tmp_path / "models" / "colorizer",
        **{"scene_encoder": False, "members": 1, "unet_width": 0.5, **overrides},
    )  # fmt: skip
    return train_and_export(config)


@dataclass(frozen=True)
class TrainedRun:
    """A run trained once per module, read (never changed) by the tests that share it."""

    root: Path
    run_dir: Path
    first_version: Path


def _trained_once(tmp_path_factory, **overrides) -> TrainedRun:
    root = tmp_path_factory.mktemp("trained")
    first_version = _train(write_tiny_dataset(root / "data"), root, "unet", **overrides)
    return TrainedRun(root, root / "run_unet", first_version)


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory) -> TrainedRun:
    cutouts = write_photos(tmp_path_factory.mktemp("cutouts"), {"apple.png": red_cutout()})
    return _trained_once(tmp_path_factory, paste_objects=cutouts)


@pytest.fixture(scope="module")
def classes_run(tmp_path_factory) -> TrainedRun:
    return _trained_once(tmp_path_factory, head="classes")


def _assert_serves_the_contracts_signature(version_dir: Path, inputs: set[str], *, hints: bool) -> None:
    assert version_dir.name == "1" and version_dir.parent.name == "colorizer"
    signature = tf.saved_model.load(str(version_dir)).signatures[contract.SIGNATURE]
    assert set(signature.structured_input_signature[1]) == inputs
    assert ModelMetadata.read(version_dir).hints == hints
    assert list(signature.structured_outputs) == [contract.OUTPUT_KEY]
    rgb = serve(version_dir, np.random.default_rng(0).random((2, 200, 200, 1), np.float32))
    assert rgb.shape == (2, 200, 200, 3) and rgb.dtype == np.float32
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0


def test_training_ours_exports_a_savedmodel_with_the_contracts_signature(regression_run):
    _assert_serves_the_contracts_signature(regression_run.first_version, {contract.INPUT_KEY, contract.HINTS_KEY}, hints=True)


def test_members_export_one_savedmodel_that_serves_their_average_colour(tiny_dataset, tmp_path):
    version_dir = _train(tiny_dataset, tmp_path, "unet", members=2, unet_width=0.25)
    _assert_serves_the_contracts_signature(version_dir, {contract.INPUT_KEY, contract.HINTS_KEY}, hints=True)
    assert ModelMetadata.read(version_dir).train["members"] == 2


def test_training_the_seeds_gan_exports_a_savedmodel_with_the_contracts_signature(tiny_dataset, tmp_path):
    _assert_serves_the_contracts_signature(_train(tiny_dataset, tmp_path, "seed"), {contract.INPUT_KEY}, hints=False)


def test_colorizer_json_records_arch_size_dataset_epochs_and_validation_metrics(regression_run):
    metadata = ModelMetadata.read(regression_run.first_version)
    assert metadata.format_version == FORMAT_VERSION
    assert metadata.arch == "unet" and metadata.size == 200 and metadata.accepts_other_sizes
    assert metadata.dataset_fingerprint == dataset_fingerprint(regression_run.root / "data")
    assert metadata.epochs == 1
    assert metadata.metrics_split == "val"  # test is scored once, at the end, by hand
    assert metadata.metrics.images > 0 and 0 < metadata.metrics.ssim <= 1
    assert metadata.train["arch"] == "unet"


def test_a_run_exports_without_the_cutouts_it_trained_with(regression_run, tmp_path):
    cutouts = TrainConfig.load(regression_run.run_dir / "config.json").paste_objects
    moved = cutouts.rename(tmp_path / "moved")
    try:
        assert export_run(regression_run.run_dir, models_dir=tmp_path / "models", evaluate=False).is_dir()
    finally:
        moved.rename(cutouts)


def test_colorizer_json_holds_no_path_of_the_training_machine(regression_run):
    text = (regression_run.first_version / contract.METADATA_FILE).read_text()
    assert str(regression_run.root) not in text and "/" not in json.dumps(json.loads(text)["train"])


def test_hints_change_the_exported_models_colour_and_the_temperature_is_exported(classes_run, tmp_path):
    # The network's own colour kept and hints not spread after it, so what changes is the network's response.
    bold = export_run(
        classes_run.run_dir, models_dir=tmp_path, evaluate=False, temperature=0.1, hint_spread=0.0, hinted_max_gain=1.0
    )
    assert ModelMetadata.read(bold).temperature == 0.1

    gray = np.full((1, 64, 64, 1), 0.5, np.float32)
    hints = np.zeros((1, 64, 64, 4), np.float32)
    hints[:, 20:44, 20:44] = (0.0, 0.2, 1.0, 1.0)  # a blue square
    assert not np.allclose(serve(bold, gray, hints), serve(bold, gray))


def _assert_accepts_other_sizes_that_divide_by_8(version_dir: Path) -> None:
    assert serve(version_dir, np.zeros((1, 64, 96, 1), np.float32)).shape == (1, 64, 96, 3)
    assert serve(version_dir, np.zeros((2, 200, 200, 1), np.float32)).shape == (2, 200, 200, 3)


def test_our_exported_model_accepts_other_sizes_that_divide_by_8(regression_run):
    _assert_accepts_other_sizes_that_divide_by_8(regression_run.first_version)


def test_our_exported_model_with_the_coco_backbone_accepts_other_sizes_that_divide_by_8(tiny_dataset, tmp_path):
    _assert_accepts_other_sizes_that_divide_by_8(_train(tiny_dataset, tmp_path, "unet", scene_encoder=True))


def test_each_export_is_the_next_version_and_leaves_no_temporary_folder(regression_run, tmp_path):
    first = export_run(regression_run.run_dir, models_dir=tmp_path, evaluate=False)
    second = export_run(regression_run.run_dir, models_dir=tmp_path, evaluate=False)

    assert (first.name, second.name) == ("1", "2")
    assert sorted(os.listdir(first.parent)) == ["1", "2"]
    assert contract.latest_version_dir(first.parent) == second


def test_a_failed_export_publishes_nothing(tiny_dataset, tmp_path):
    trainer = prepare_run(TrainConfig(data=tiny_dataset, arch="unet", run_dir=tmp_path / "run", scene_encoder=False, members=1))
    models_root = tmp_path / "models"

    def broken_evaluation(staging: Path) -> dict[str, float]:
        assert (staging / "saved_model.pb").is_file()  # the model was written, but is not yet published
        raise RuntimeError("evaluation failed")

    with pytest.raises(RuntimeError, match="evaluation failed"):
        export_model(trainer.gan.generator, trainer.architecture, models_root, {}, evaluate=broken_evaluation)
    assert os.listdir(models_root) == []
    assert contract.versions(models_root) == []


def test_an_export_with_a_field_colorizer_json_does_not_have_writes_nothing(tiny_dataset, tmp_path):
    trainer = prepare_run(TrainConfig(data=tiny_dataset, arch="unet", run_dir=tmp_path / "run", scene_encoder=False, members=1))
    models_root = tmp_path / "models"

    with pytest.raises(ValidationError, match="epoch"):
        export_model(trainer.gan.generator, trainer.architecture, models_root, {"epoch": 1})  # a typo for "epochs"
    assert not models_root.exists()


def test_a_model_trained_in_mixed_precision_exports_in_float32(tiny_dataset, tmp_path):
    version_dir = _train(tiny_dataset, tmp_path, "unet", mixed_precision="on")

    dtypes = tf.train.load_checkpoint(str(version_dir / "variables" / "variables")).get_variable_to_dtype_map()
    weights = {name: dtype for name, dtype in dtypes.items() if "generator" in name}
    assert weights and set(weights.values()) == {tf.float32}
    assert _half_precision_ops(version_dir) == []
    assert serve(version_dir, np.zeros((1, 200, 200, 1), np.float32)).dtype == np.float32


def _half_precision_ops(version_dir) -> list[str]:
    """Every op of the saved graph, its functions included, that computes in float16."""
    saved_model = saved_model_pb2.SavedModel.FromString((version_dir / "saved_model.pb").read_bytes())
    graph = saved_model.meta_graphs[0].graph_def
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    half = types_pb2.DT_HALF
    return [
        f"{node.op} {node.name}"
        for node in nodes
        if any(value.type == half or half in value.list.type for value in node.attr.values())
    ]


def test_a_dataset_holding_nothing_out_trains_and_exports_a_model_without_scores(tiny_dataset, tmp_path):
    for split in ("val", "test"):  # as `dataset folds` writes its `all`
        for side in ("x", "y"):
            for path in (tiny_dataset / f"{split}_{side}").iterdir():
                path.unlink()

    version_dir = _train(tiny_dataset, tmp_path, "unet")

    metadata = ModelMetadata.read(version_dir)
    assert metadata.metrics is None and metadata.metrics_split is None
    assert not (tmp_path / "run_unet" / "validation.csv").exists()
    with pytest.raises(ValueError, match="no validation split"):
        choose_decoding([tmp_path / "run_unet"])


def test_the_export_command_refuses_a_folder_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(app, ["export", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not a training run" in result.output


def test_the_chroma_gain_is_exported_and_scales_the_colour(regression_run, tmp_path):
    plain = export_run(regression_run.run_dir, models_dir=tmp_path, evaluate=False, chroma_gain=1.0)
    bold = export_run(regression_run.run_dir, models_dir=tmp_path, evaluate=False, chroma_gain=2.0)
    assert ModelMetadata.read(bold).chroma_gain == 2.0

    gray = np.random.default_rng(0).uniform(0.2, 0.8, (1, 64, 64, 1)).astype(np.float32)
    plain_ab, bold_ab = served_ab(plain, gray), served_ab(bold, gray)
    assert np.abs(plain_ab).max() > 0.5  # some colour to scale
    doubled = np.isclose(bold_ab, 2.0 * plain_ab, atol=2.0)  # in Lab units
    assert doubled.mean() > 0.95  # the rest left sRGB's gamut and was clipped


def test_the_chroma_threshold_is_exported_and_takes_the_weakest_colour_away(regression_run, tmp_path):
    export = partial(export_run, regression_run.run_dir, models_dir=tmp_path, evaluate=False, chroma_gain=1.0)
    plain, thresholded = export(chroma_threshold=0.0), export(chroma_threshold=2.0)
    assert ModelMetadata.read(thresholded).chroma_threshold == 2.0

    gray = np.random.default_rng(0).uniform(0.2, 0.8, (1, 64, 64, 1)).astype(np.float32)
    plain_ab, thresholded_ab = served_ab(plain, gray), served_ab(thresholded, gray)
    plain_chroma, thresholded_chroma = np.linalg.norm(plain_ab, axis=-1), np.linalg.norm(thresholded_ab, axis=-1)
    weak, strong = plain_chroma < 1.5, plain_chroma > 3.0  # in Lab units, as the threshold
    assert weak.any() and strong.any()
    assert np.all(thresholded_chroma[weak] < 0.3)
    np.testing.assert_allclose(thresholded_chroma[strong], plain_chroma[strong] - 2.0, atol=0.3)


def test_the_hint_spread_is_exported_and_acts_only_where_hints_are_given(regression_run, tmp_path):
    export = partial(export_run, regression_run.run_dir, models_dir=tmp_path, evaluate=False, hinted_max_gain=1.0)
    plain, spread = export(hint_spread=0.0), export(hint_spread=16.0)
    assert ModelMetadata.read(spread).hint_spread == 16.0

    gray = np.full((1, 64, 64, 1), 0.5, np.float32)
    np.testing.assert_allclose(serve(spread, gray), serve(plain, gray), atol=1e-6)
    blue = Hint(x=32, y=32, color="#1a4de6")
    hints = imaging.hint_map([blue], (64, 64), 64)[None]  # as the service paints it
    wanted = color.rgb_to_lab(tf.constant(blue.rgb))[1:].numpy()
    near = (32, 44)  # 12 pixels from the hint

    def distance_near_the_hint(version: Path) -> float:
        return float(np.linalg.norm(color.rgb_to_lab(serve(version, gray, hints))[0, near[0], near[1], 1:] - wanted))

    assert distance_near_the_hint(spread) < 0.5 * distance_near_the_hint(plain)


def test_near_its_hints_a_photo_takes_their_colour_and_far_from_them_the_models(regression_run, tmp_path):
    export = partial(export_run, regression_run.run_dir, models_dir=tmp_path, evaluate=False)
    kept, hints_alone = export(), export(hinted_max_gain=0.0)
    assert (ModelMetadata.read(kept).hinted_max_gain, ModelMetadata.read(hints_alone).hinted_max_gain) == (1.0, 0.0)

    gray = np.random.default_rng(0).uniform(0.3, 0.7, (1, 64, 64, 1)).astype(np.float32)
    hints = imaging.hint_map([Hint(x=8, y=8, color="#1a4de6")], (64, 64), 64)[None]  # blue, in a corner
    unhinted, served = serve(kept, gray)[0], serve(kept, gray, hints)[0]
    gray_elsewhere = serve(hints_alone, gray, hints)[0]
    for near_the_hint in (served[8, 8], gray_elsewhere[8, 8]):
        red, green, blue = near_the_hint
        assert blue > red + 0.1 and blue > green + 0.1
    far = np.s_[56:, 56:]  # 4.5 spreads and more from the hint
    assert np.ptp(unhinted[far], axis=-1).max() > 0.02  # the model colours it
    np.testing.assert_allclose(served[far], unhinted[far], atol=0.02)
    np.testing.assert_allclose(gray_elsewhere[far], np.repeat(gray[0][far], 3, axis=-1), atol=0.02)


def test_an_exported_version_exported_again_with_another_decoding_serves_as_the_run_would(regression_run, tmp_path):
    first = regression_run.first_version
    from_run = export_run(regression_run.run_dir, models_dir=tmp_path / "run", evaluate=False, chroma_threshold=5.0, chroma_gain=1.5)
    again = export_version_again(first, models_dir=tmp_path / "again", chroma_threshold=5.0, chroma_gain=1.5)

    metadata, original = ModelMetadata.read(again), ModelMetadata.read(first)
    assert (metadata.chroma_threshold, metadata.chroma_gain, metadata.size) == (5.0, 1.5, original.size)
    assert (metadata.steps, metadata.train, metadata.metrics) == (original.steps, original.train, None)
    gray = np.random.default_rng(0).uniform(0.2, 0.8, (1, 64, 64, 1)).astype(np.float32)
    np.testing.assert_allclose(serve(again, gray), serve(from_run, gray), atol=1e-6)


def test_the_export_command_exports_a_version_again_beside_it(regression_run, tmp_path):
    first = export_run(regression_run.run_dir, models_dir=tmp_path, evaluate=False)
    options = ["--chroma-threshold", "3", "--hint-spread", "24", "--hinted-max-gain", "0.5"]
    result = CliRunner().invoke(app, ["export", str(first), *options])

    assert result.exit_code == 0, result.output
    again = ModelMetadata.read(first.parent / str(int(first.name) + 1))
    assert (again.chroma_threshold, again.hint_spread, again.hinted_max_gain) == (3.0, 24.0, 0.5)


def test_choosing_the_decoding_scores_each_threshold_gain_and_temperature_against_the_gray_input(classes_run):
    best, results = choose_decoding([classes_run.run_dir])

    assert best["chroma_gain"] in CHROMA_GAINS and best["chroma_threshold"] in CHROMA_THRESHOLDS
    assert best["temperature"] in TEMPERATURES
    assert GRAY_LABEL in results
    assert len(results) == 1 + len(CHROMA_THRESHOLDS) * len(CHROMA_GAINS) * len(TEMPERATURES)


def test_choosing_the_decoding_over_several_runs_pools_their_validation_images(regression_run):
    run_dir = regression_run.run_dir
    _, alone = choose_decoding([run_dir], gains=[1.0], thresholds=[0.0])
    _, twice = choose_decoding([run_dir, run_dir], gains=[1.0], thresholds=[0.0])

    assert all(twice[label]["images"] == 2 * alone[label]["images"] for label in alone)
    label = "size 200, chroma_threshold 0.0, chroma_gain 1.0"
    assert twice[label]["ciede2000"] == pytest.approx(alone[label]["ciede2000"])


def test_choosing_the_decoding_also_scores_the_sizes_photos_are_seen_at(regression_run):
    best, results = choose_decoding([regression_run.run_dir], sizes=[64, 128], gains=[1.0], thresholds=[0.0])

    small, large = (f"size {size}, chroma_threshold 0.0, chroma_gain 1.0" for size in (64, 128))
    assert set(results) == {GRAY_LABEL, small, large}
    assert best["size"] in (64, 128) and best["chroma_gain"] == 1.0
    assert results[small]["ciede2000"] != results[large]["ciede2000"]


def test_the_chosen_size_is_exported_as_the_native_size_and_served_at(regression_run, tmp_path):
    version_dir = export_run(regression_run.run_dir, models_dir=tmp_path, evaluate=False, size=128)

    assert ModelMetadata.read(version_dir).size == 128
    gray = np.random.default_rng(0).random((1, 128, 128, 1), np.float32)
    assert serve(version_dir, gray).shape == (1, 128, 128, 3)


@pytest.mark.parametrize("arch, size", [("unet", 100), ("seed", 128)])
def test_a_size_the_network_cannot_see_at_is_refused(arch, size):
    with pytest.raises(ValueError, match=f"Received: size={size}"):
        get_architecture(arch).set_native_size(size)


def _result(pooled: float, by_collection: float, colour: float) -> dict[str, float]:
    return {"ciede2000": pooled, "ciede2000_by_collection": by_collection, "colorfulness_ratio": colour}


def test_the_decoding_is_the_most_colourful_that_beats_gray_in_the_per_collection_delta_e():
    results = {
        GRAY_LABEL: _result(pooled=12.0, by_collection=14.0, colour=0.0),
        "gain 1": _result(pooled=11.5, by_collection=13.9, colour=0.4),
        "gain 1.5": _result(pooled=11.9, by_collection=14.2, colour=0.6),  # ahead pooled, behind per collection
        "gain 0.5": _result(pooled=11.6, by_collection=13.5, colour=0.2),
    }
    assert pick_decoding(results, ["gain 1", "gain 1.5", "gain 0.5"]) == "gain 1"


def test_when_no_decoding_beats_gray_the_closest_is_picked():
    results = {
        GRAY_LABEL: _result(pooled=12.0, by_collection=14.0, colour=0.0),
        "gain 1": _result(pooled=12.5, by_collection=14.3, colour=0.4),
        "gain 2": _result(pooled=12.1, by_collection=14.9, colour=0.8),
    }
    assert pick_decoding(results, ["gain 1", "gain 2"]) == "gain 1"


def test_staging_folders_left_by_killed_exports_are_removed(tmp_path):
    host = socket.gethostname()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f".export-{host}-{gone.stdout.strip()}-0123456789ab"  # its process has exited
    live = tmp_path / f".export-{host}-{os.getpid()}-0123456789ab"  # an export in progress
    old = tmp_path / ".export-0123456789abcdef0123456789abcdef"  # from before names carried the process
    recent_elsewhere = tmp_path / ".export-other-host-42-0123456789ab"
    for folder in (dead, live, old, recent_elsewhere):
        (folder / "variables").mkdir(parents=True)
    a_day_ago = time.time() - STALE_STAGING_S - 60
    for path in (old, old / "variables"):
        os.utime(path, (a_day_ago, a_day_ago))
    (tmp_path / "1").mkdir()

    removed = remove_stale_staging(tmp_path)

    assert sorted(removed) == sorted([dead, old])
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["1", live.name, recent_elsewhere.name])
