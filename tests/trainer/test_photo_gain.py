"""A gain per photo: fitted from scene summaries, judged cross-fitted, exported into the graph."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from photo_folders import write_tiny_dataset
from served import serve
from typer.testing import CliRunner

from colorizer_core.metadata import ModelMetadata
from colorizer_trainer.cli import app
from colorizer_trainer.config import TrainConfig
from colorizer_trainer.gans import get_architecture
from colorizer_trainer.photo_gain import (
    MembersDoubt,
    PhotoGain,
    PhotoGainFit,
    cross_fitted_choices,
    fit_ridge,
    with_scene_summary,
)
from colorizer_trainer.runs import (
    GRAY_LABEL,
    PHOTO_GAIN_LABEL,
    export_run,
    export_version_again,
    fit_photo_gain,
    train_and_export,
)

GAINS = (0.0, 1.0, 2.0)


@pytest.fixture
def summaries_and_delta_e() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """200 photos' scene summaries and the ΔE2000 each gain gives them, a linear function of the summaries."""
    rng = np.random.default_rng(0)
    summaries = rng.normal(3.0, 2.0, (200, 6))
    weights, bias = rng.normal(0, 1, (6, len(GAINS))), np.array([10.0, 9.0, 11.0])
    return summaries, summaries @ weights + bias, weights


def test_the_fit_predicts_each_gains_delta_e_from_the_scene_summary(summaries_and_delta_e):
    summaries, delta_e, weights = summaries_and_delta_e
    fit = fit_ridge(summaries, delta_e, gains=GAINS, chroma_threshold=6.0, strength=1e-6)

    np.testing.assert_allclose(fit.weights, weights, atol=1e-3)
    np.testing.assert_allclose(summaries @ fit.weights + fit.bias, delta_e, atol=1e-2)


def test_each_photo_gets_the_gain_whose_predicted_delta_e_less_the_lean_is_lowest():
    fit = PhotoGainFit(GAINS, 0.0, 0.0, weights=np.array([[1.0, 0.0, -1.0]], np.float32), bias=np.zeros(3, np.float32))
    summaries = np.array([[-2.0], [0.1], [2.0]], np.float32)  # predicted ΔE: (-2, 0, 2), (0.1, 0, -0.1), (2, 0, -2)

    assert fit.choose(summaries).tolist() == [0, 2, 2]
    assert fit.with_lean(0.0).choose(np.array([[0.0]], np.float32)).tolist() == [0]  # a tie: the first
    assert fit.with_lean(0.5).choose(np.array([[-2.0], [0.0]], np.float32)).tolist() == [0, 2]


def test_the_exported_choice_gives_each_photo_the_gain_the_fit_chooses(summaries_and_delta_e):
    summaries, delta_e, _ = summaries_and_delta_e
    fit = fit_ridge(summaries, delta_e, gains=GAINS, chroma_threshold=0.0).with_lean(0.7)
    chosen = PhotoGain.from_fit(fit)(summaries.astype(np.float32)).numpy()

    np.testing.assert_array_equal(chosen, np.asarray(GAINS)[fit.choose(summaries)])


def test_a_larger_lean_never_gives_a_photo_less_gain(summaries_and_delta_e):
    summaries, delta_e, _ = summaries_and_delta_e
    choices = cross_fitted_choices(summaries, delta_e, np.arange(200) % 2, gains=GAINS, leans=(0.0, 0.5, 1.0, 100.0), strength=1.0)

    chosen = np.stack([choices[lean] for lean in (0.0, 0.5, 1.0, 100.0)])
    assert len(np.unique(chosen[0])) == len(GAINS)  # without a lean, each gain is some photo's best
    assert np.all(np.diff(chosen, axis=0) >= 0)
    assert np.all(chosen[-1] == 2)  # a lean larger than any ΔE2000 difference colours every photo fully


def test_cross_fitted_gains_of_a_run_come_from_the_other_runs_photos_only(summaries_and_delta_e):
    summaries, delta_e, _ = summaries_and_delta_e
    runs = np.arange(200) % 2
    perturbed = delta_e.copy()
    perturbed[runs == 0] = np.random.default_rng(1).permutation(perturbed[runs == 0])

    before = cross_fitted_choices(summaries, delta_e, runs, gains=GAINS, leans=(0.0,), strength=1.0)[0.0]
    after = cross_fitted_choices(summaries, perturbed, runs, gains=GAINS, leans=(0.0,), strength=1.0)[0.0]
    np.testing.assert_array_equal(before[runs == 0], after[runs == 0])
    assert not np.array_equal(before[runs == 1], after[runs == 1])


def test_a_fit_reads_back_as_written(summaries_and_delta_e, tmp_path):
    summaries, delta_e, _ = summaries_and_delta_e
    fit = fit_ridge(summaries, delta_e, gains=GAINS, chroma_threshold=6.0).with_lean(0.5)
    again = PhotoGainFit.read(fit.write(tmp_path / "photo-gain.json"))

    assert (again.gains, again.lean, again.chroma_threshold, again.scene, again.doubt) == (GAINS, 0.5, 6.0, True, False)
    np.testing.assert_array_equal(again.choose(summaries), fit.choose(summaries))


def test_a_fit_written_before_the_members_doubt_reads_as_reading_the_scene_alone(summaries_and_delta_e, tmp_path):
    summaries, delta_e, _ = summaries_and_delta_e
    fit = replace(fit_ridge(summaries, delta_e, gains=GAINS, chroma_threshold=6.0), scene=False, doubt=True)
    path = fit.write(tmp_path / "fit.json")
    document = json.loads(path.read_text())
    del document["scene"], document["doubt"]
    path.write_text(json.dumps(document))

    again = PhotoGainFit.read(path)
    assert (again.scene, again.doubt) == (True, False)


def test_the_members_doubt_is_none_where_they_agree_and_whole_where_they_cancel():
    agreeing = np.tile(np.array([0.3, -0.4], np.float32), (1, 4, 4, 2))  # two members, the same colour
    cancelling = np.tile(np.array([0.3, -0.4, -0.3, 0.4], np.float32), (1, 4, 4, 1))  # opposite colours

    doubt = MembersDoubt(members=2)(np.concatenate([agreeing, cancelling])).numpy()
    np.testing.assert_allclose(doubt[0], [0.5, 0.0, 1.0], atol=1e-5)  # saturation, spread, agreement
    np.testing.assert_allclose(doubt[1], [0.0, 0.5, 0.0], atol=1e-5)


def test_a_file_that_is_not_a_fit_is_refused(tmp_path):
    (tmp_path / "other.json").write_text('{"gains": [1.0]}')
    with pytest.raises(ValueError, match="no 'lean'"):
        PhotoGainFit.read(tmp_path / "other.json")


# --- fitted on runs and exported --------------------------------------------------------------


@pytest.fixture(scope="module")
def scene_run(tmp_path_factory) -> Path:
    """One epoch of ours with the COCO backbone and two members; each test exports to its own folder."""
    root = tmp_path_factory.mktemp("scene")
    config = TrainConfig(
        data=write_tiny_dataset(root / "data"), arch="unet", scene_encoder=True, members=2, epochs=1, batch_size=2,
        run_dir=root / "run",
    )
    train_and_export(config, export=False)
    return root / "run"


SCENE_FEATURES = 208


def _bias_towards(gain: float) -> PhotoGainFit:
    """A fit that gives every photo ``gain``: its predicted ΔE2000 is lowest whatever the photo."""
    bias = np.array([0.0 if candidate == gain else 5.0 for candidate in GAINS], np.float32)
    return PhotoGainFit(GAINS, 0.0, 3.0, np.zeros((SCENE_FEATURES, len(GAINS)), np.float32), bias, ("fold0", "fold1"))


def _by_agreement(sign: float, *, scene: bool = True) -> PhotoGainFit:
    """A fit that reads only the members' agreement (the summary's last feature): the more they agree,
    the lower gain 2's predicted ΔE2000 with ``sign`` -1, the higher with +1."""
    weights = np.zeros((SCENE_FEATURES * scene + 3, len(GAINS)), np.float32)
    weights[-1, GAINS.index(2.0)] = sign * 100.0
    bias = np.array([0.0, 0.1, 0.0], np.float32)
    return PhotoGainFit(GAINS, 0.0, 3.0, weights, bias, ("fold0", "fold1"), scene=scene, doubt=True)


@pytest.fixture(scope="module")
def exported(scene_run, tmp_path_factory) -> dict[str, Path]:
    """The run exported at threshold 3 with a gain per photo that picks 0 or 2 for every photo, and with 2 or 1 for all."""
    models = tmp_path_factory.mktemp("exported")
    versions = {f"{gain} per photo": dict(photo_gain=_bias_towards(gain)) for gain in (0.0, 2.0)}
    versions |= {f"{name} by agreement": dict(photo_gain=_by_agreement(sign)) for name, sign in (("2.0", -1.0), ("0.0", 1.0))}
    versions["2.0 by agreement alone"] = dict(photo_gain=_by_agreement(-1.0, scene=False))
    versions |= {f"{gain} for all": dict(chroma_threshold=3.0, chroma_gain=gain) for gain in (2.0, 1.0)}
    return {name: export_run(scene_run, models_dir=models, evaluate=False, **choice) for name, choice in versions.items()}


def test_an_exported_gain_per_photo_colours_as_the_gain_it_picks(exported):
    gray = np.random.default_rng(0).uniform(0.2, 0.8, (2, 64, 64, 1)).astype(np.float32)

    gray_rgb = np.repeat(gray, 3, axis=-1)
    np.testing.assert_allclose(serve(exported["0.0 per photo"], gray), gray_rgb, atol=0.02)  # up to Lab round trips
    np.testing.assert_allclose(serve(exported["2.0 per photo"], gray), serve(exported["2.0 for all"], gray), atol=1e-5)
    metadata = ModelMetadata.read(exported["2.0 per photo"])
    assert (metadata.chroma_threshold, metadata.chroma_gain) == (3.0, None)
    assert (metadata.photo_gain.gains, metadata.photo_gain.fitted_on) == (list(GAINS), ["fold0", "fold1"])


def test_an_exported_gain_per_photo_can_read_how_much_the_members_agree(exported):
    gray = np.random.default_rng(0).uniform(0.2, 0.8, (2, 64, 64, 1)).astype(np.float32)

    np.testing.assert_allclose(serve(exported["2.0 by agreement"], gray), serve(exported["2.0 for all"], gray), atol=1e-5)
    np.testing.assert_allclose(serve(exported["0.0 by agreement"], gray), serve(exported["0.0 per photo"], gray), atol=1e-5)
    assert ModelMetadata.read(exported["2.0 by agreement"]).photo_gain.doubt


def test_an_exported_gain_per_photo_can_read_the_members_doubt_alone(exported):
    gray = np.random.default_rng(0).uniform(0.2, 0.8, (2, 64, 64, 1)).astype(np.float32)

    np.testing.assert_allclose(serve(exported["2.0 by agreement alone"], gray), serve(exported["2.0 for all"], gray), atol=1e-5)
    reads = ModelMetadata.read(exported["2.0 by agreement alone"]).photo_gain
    assert (reads.scene, reads.doubt) == (False, True)


def test_a_photo_given_hints_is_never_strengthened_by_its_scene_gain(exported):
    gray = np.random.default_rng(0).uniform(0.3, 0.7, (2, 64, 64, 1)).astype(np.float32)
    hints = np.zeros((2, 64, 64, 4), np.float32)
    hints[0, 28:33, 28:33] = (0.0, 0.2, 1.0, 1.0)  # a blue hint on the first photo only

    served = serve(exported["2.0 per photo"], gray, hints)
    np.testing.assert_allclose(served[0], serve(exported["1.0 for all"], gray, hints)[0], atol=1e-5)  # capped at 1
    np.testing.assert_allclose(served[1], serve(exported["2.0 for all"], gray, hints)[1], atol=1e-5)  # no hints: 2


def test_a_gain_per_photo_is_refused_under_another_threshold_than_its_fit(scene_run, tmp_path):
    with pytest.raises(ValueError, match="fitted under chroma threshold 3.0"):
        export_run(scene_run, models_dir=tmp_path, evaluate=False, chroma_threshold=6.0, photo_gain=_bias_towards(1.0))


@pytest.mark.parametrize("version", ["2.0 per photo", "2.0 by agreement", "2.0 by agreement alone"])
def test_a_version_with_a_gain_per_photo_exported_again_keeps_it(exported, version, tmp_path):
    first = exported[version]
    again = export_version_again(first, models_dir=tmp_path)

    assert ModelMetadata.read(again).photo_gain == ModelMetadata.read(first).photo_gain
    gray = np.random.default_rng(0).uniform(0.2, 0.8, (1, 64, 64, 1)).astype(np.float32)
    np.testing.assert_allclose(serve(again, gray), serve(first, gray), atol=1e-6)


def test_fitting_scores_gray_each_gain_and_each_lean_and_picks_a_lean(scene_run):
    fit, results = fit_photo_gain([scene_run, scene_run], chroma_threshold=3.0, gains=GAINS, leans=(0.0, 1.0))

    expected = {GRAY_LABEL, *(f"gain {gain}" for gain in GAINS), *(PHOTO_GAIN_LABEL.format(lean) for lean in (0.0, 1.0))}
    assert set(results) == expected
    assert results[f"gain {GAINS[0]}"]["colorfulness_ratio"] < 0.05  # gain 0: gray
    assert (fit.lean in (0.0, 1.0), fit.chroma_threshold, fit.fitted_on) == (True, 3.0, ("run", "run"))
    assert fit.weights.shape == (SCENE_FEATURES, len(GAINS))


def test_fitting_with_the_members_doubt_reads_three_more_features(scene_run):
    fit, _ = fit_photo_gain([scene_run, scene_run], chroma_threshold=3.0, gains=GAINS, leans=(0.0,), doubt=True)

    assert (fit.doubt, fit.weights.shape) == (True, (SCENE_FEATURES + 3, len(GAINS)))


def test_fitting_on_the_members_doubt_alone_reads_three_features(scene_run):
    fit, _ = fit_photo_gain([scene_run, scene_run], chroma_threshold=3.0, gains=GAINS, leans=(0.0,), strength=10.0, scene=False, doubt=True)

    assert (fit.scene, fit.doubt, fit.weights.shape) == (False, True, (3, len(GAINS)))


@pytest.mark.parametrize("reads", [[], ["--no-scene", "--doubt", "--ridge-strength", "10"]], ids=["scene", "doubt alone"])
def test_the_fit_command_writes_a_file_export_reads(scene_run, reads, tmp_path):
    out = tmp_path / "photo-gain.json"
    fit_arguments = ["--out", str(out), "--gains", "0", "--gains", "1", "--leans", "0", *reads]
    fitted = CliRunner().invoke(app, ["fit-photo-gain", str(scene_run), str(scene_run), *fit_arguments])
    assert fitted.exit_code == 0, fitted.output
    assert "chosen: lean 0.0" in fitted.output

    export_arguments = ["--models-dir", str(tmp_path / "models"), "--no-evaluate", "--photo-gain", str(out)]
    exported = CliRunner().invoke(app, ["export", str(scene_run), *export_arguments])
    assert exported.exit_code == 0, exported.output
    photo_gain = ModelMetadata.read(tmp_path / "models" / "1").photo_gain
    assert (photo_gain.gains, photo_gain.scene) == ([0.0, 1.0], not reads)


def test_fitting_needs_two_runs(scene_run):
    with pytest.raises(ValueError, match="two or more runs"):
        fit_photo_gain([scene_run], chroma_threshold=0.0)


def test_a_gain_per_photo_needs_the_coco_backbone():
    with pytest.raises(ValueError, match="--scene-encoder"):
        with_scene_summary(get_architecture("unet", scene_encoder=False).build_generator())


def test_a_gain_per_photo_reads_something():
    with pytest.raises(ValueError, match="the scene, the members' doubt, or both"):
        with_scene_summary(get_architecture("unet", scene_encoder=True, members=2).build_generator(), scene=False)


def test_the_members_doubt_needs_several_members():
    with pytest.raises(ValueError, match="--members 2"):
        with_scene_summary(get_architecture("unet", scene_encoder=True, members=1).build_generator(), doubt=True)
