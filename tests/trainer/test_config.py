"""The training configuration is the one place each default and help text is stated: the `train`
command, the architectures and saved runs all agree with it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from colorizer_trainer import losses, runs
from colorizer_trainer.cli import app
from colorizer_trainer.config import (
    ARCHITECTURE_DEFAULTS,
    CHROMA_GAINS,
    CHROMA_THRESHOLDS,
    PHOTO_GAIN_LEANS,
    PHOTO_GAINS,
    RIDGE_STRENGTH,
    TrainConfig,
    command_line_settings,
    help_text,
)
from colorizer_trainer.dataset.build import BuildOptions
from colorizer_trainer.dataset.scrape import ScrapeOptions
from colorizer_trainer.gans import get_architecture

# A value other than the default for every setting `train` takes.
CHANGED_SETTINGS = dict(
    arch="seed",
    epochs=3,
    batch_size=4,
    lr=1e-3,
    head="classes",
    scene_encoder=False,
    hints_in_decoder=True,
    scene_detail=True,
    unet_width=0.25,
    members=2,
    chroma_loss="ciede2000",
    l1_weight=10.0,
    adversarial_weight=1.0,
    crops_per_photo=1,
    photos_per_collection=8,
    paste_objects=Path("cutouts"),
    film_share=0.5,
    ema_decay=0.5,
    seed=7,
    run_dir=Path("elsewhere/run"),
    models_dir=Path("elsewhere/models"),
    sample_every=2,
    validate_every_min=1.5,
    time_budget_min=3.0,
    threads=1,
    mixed_precision="off",
    strategy="default",
)


@pytest.fixture
def trained_configs(monkeypatch) -> list[tuple[TrainConfig, bool]]:
    """What `train` hands to the training run (the config, whether to export), instead of training."""
    calls = []
    monkeypatch.setattr(runs, "train_and_export", lambda config, *, export: calls.append((config, export)))
    return calls


def _train(*args: object):
    return CliRunner().invoke(app, ["train", *map(str, args)])


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _tokens(name: str, value: object) -> list[object]:
    """``--name value``; a flag alone for a bool (``--no-name`` for False)."""
    if isinstance(value, bool):
        return [_option(name if value else f"no_{name}")]
    return [_option(name), value]


def test_train_without_options_trains_the_default_configuration(trained_configs, tmp_path):
    outcome = _train(tmp_path / "data")

    assert outcome.exit_code == 0, outcome.output
    assert trained_configs == [(TrainConfig(data=tmp_path / "data"), True)]


def test_each_train_option_sets_its_setting(trained_configs, tmp_path):
    options = [token for name, value in CHANGED_SETTINGS.items() for token in _tokens(name, value)]
    outcome = _train(tmp_path / "data", *options, "--no-export")

    assert outcome.exit_code == 0, outcome.output
    assert trained_configs == [(TrainConfig(data=tmp_path / "data", **CHANGED_SETTINGS), False)]


def test_the_changed_settings_cover_every_option_and_differ_from_its_default():
    settings = {setting.name: setting.default for setting in command_line_settings() if setting.name != "data"}

    assert set(CHANGED_SETTINGS) == set(settings)
    assert all(CHANGED_SETTINGS[name] != default for name, default in settings.items())


def test_train_shows_each_settings_help_and_keeps_the_others_off_the_command_line():
    command = typer.main.get_command(app).commands["train"]
    shown = {parameter.name: parameter.help for parameter in command.params if parameter.name != "export"}

    assert shown == {setting.name: help_text(setting) for setting in command_line_settings()}
    assert not {"label_softening", "checkpoint_every_min"} & set(shown)


def test_a_setting_out_of_range_is_refused_before_anything_is_written(trained_configs, tmp_path):
    outcome = _train(tmp_path / "data", "--epochs", 0, "--run-dir", tmp_path / "run")

    assert outcome.exit_code == 1
    assert "epochs=0" in outcome.output
    assert trained_configs == [] and not (tmp_path / "run").exists()


@pytest.mark.parametrize("arch", ARCHITECTURE_DEFAULTS)
def test_a_run_folder_defaults_to_one_named_for_its_architecture(arch):
    assert TrainConfig(data=Path("data"), arch=arch).run_dir == Path("runs") / arch


@pytest.mark.parametrize("setting", ["lr", "ema_decay"])
def test_a_setting_left_to_the_architecture_says_each_architectures_default(setting):
    (field,) = [field for field in command_line_settings() if field.name == setting]

    for arch, defaults in ARCHITECTURE_DEFAULTS.items():
        assert f"{arch} {getattr(defaults, setting):g}" in help_text(field)


@pytest.mark.parametrize("arch", ARCHITECTURE_DEFAULTS)
def test_an_architecture_built_without_settings_has_the_configurations_defaults(arch):
    architecture = get_architecture(arch)

    assert architecture.label_softening == TrainConfig.label_softening
    assert architecture.default_lr == ARCHITECTURE_DEFAULTS[arch].lr
    assert architecture.default_ema_decay == ARCHITECTURE_DEFAULTS[arch].ema_decay
    if arch == "unet":
        assert (architecture.l1_weight, architecture.adversarial_weight) == (TrainConfig.l1_weight, TrainConfig.adversarial_weight)
        assert architecture.config.head == TrainConfig.head
        assert architecture.config.members == TrainConfig.members
        assert architecture.member_losses == losses.member_chroma_losses(TrainConfig.chroma_loss, TrainConfig.members)


# A run's config.json as the trainer wrote it before `strategy` and `photos_per_collection` existed.
SAVED_RUN = {
    "data": "data9",
    "arch": "unet",
    "epochs": 1000,
    "batch_size": 16,
    "lr": None,
    "head": "classes",
    "l1_weight": 100.0,
    "adversarial_weight": 0.0,
    "crops_per_photo": 2,
    "ema_decay": None,
    "label_softening": 0.1,
    "seed": 0,
    "run_dir": "runs/v_classes",
    "models_dir": "models/colorizer",
    "sample_every": 5,
    "checkpoint_every_min": 10.0,
    "validate_every_min": 9.0,
    "time_budget_min": 45.0,
    "threads": 1,
    "mixed_precision": "auto",
}


def test_a_saved_run_resumes_with_the_command_that_began_it(trained_configs, tmp_path):
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps(SAVED_RUN))
    _train("data9", "--epochs", 1000, "--batch-size", 16, "--head", "classes", "--run-dir", "runs/v_classes",
           "--validate-every-min", 9, "--time-budget-min", 45, "--threads", 1, "--no-scene-encoder",
           "--members", 1, "--unet-width", 1.0)

    ((config, _),) = trained_configs
    assert TrainConfig.load(saved).differences(config) == []
    # Settings added since: the backbone off and one full-width U-Net (the run predates them, and says so by leaving
    # them out), the rest at their defaults.
    newer = {
        "scene_encoder": False,
        "hints_in_decoder": False,
        "scene_detail": False,
        "unet_width": 1.0,
        "members": 1,
        "chroma_loss": "l1",
        "photos_per_collection": None,
        "paste_objects": None,
        "film_share": 0.0,
        "strategy": "auto",
    }
    assert config.to_json() == {**SAVED_RUN, **newer}  # config.json's format: the same keys, in the same order
    assert [key for key in config.to_json() if key not in newer] == list(SAVED_RUN)


def _defaults(command: str) -> dict[str, object]:
    """The defaults of a `colorize-train` command's parameters, by name (``command``: "dataset build")."""
    found = typer.main.get_command(app)
    for name in command.split():
        found = found.commands[name]
    return {parameter.name: parameter.default for parameter in found.params}


def test_dataset_build_and_scrape_options_default_to_their_options_classes():
    build, scrape = _defaults("dataset build"), _defaults("dataset scrape")

    assert {name: build[name] for name in asdict(BuildOptions())} == asdict(BuildOptions())
    assert (scrape["limit"], scrape["timeout"]) == (ScrapeOptions.limit, ScrapeOptions.timeout)


def test_evaluate_and_hints_curve_score_the_same_split_the_same_way_by_default():
    evaluate, hints_curve = _defaults("evaluate"), _defaults("hints-curve")

    assert all(evaluate[name] == hints_curve[name] for name in ("split", "per_photo", "grid_rows"))


def test_the_decoding_searches_default_to_the_configurations_values():
    choose, fit = _defaults("choose-decoding"), _defaults("fit-photo-gain")

    assert (choose["gains"], choose["thresholds"]) == (list(CHROMA_GAINS), list(CHROMA_THRESHOLDS))
    assert (fit["gains"], fit["leans"], fit["ridge_strength"]) == (list(PHOTO_GAINS), list(PHOTO_GAIN_LEANS), RIDGE_STRENGTH)


def test_the_classes_head_is_refused_more_than_one_member_before_anything_is_written():
    with pytest.raises(ValueError, match="--members 1"):
        TrainConfig(data=Path("data"), head="classes", members=2)


def test_mixed_chroma_losses_are_refused_a_single_member():
    with pytest.raises(ValueError, match="--members 2"):
        TrainConfig(data=Path("data"), chroma_loss="l1-mixed", members=1)
