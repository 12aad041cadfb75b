"""colorizer.json: one typed record, written and read the same way; a file it cannot trust is refused, saying why."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

from colorizer_core import contract
from colorizer_core.metadata import InvalidMetadata, ModelMetadata, ValidationMetrics

BUNDLED_VERSION = Path(__file__).resolve().parents[1] / "models" / "colorizer" / "1"


def write_json(version_dir: Path, document: dict) -> Path:
    version_dir.mkdir(parents=True, exist_ok=True)
    (version_dir / contract.METADATA_FILE).write_text(json.dumps(document))
    return version_dir


def bundled_document() -> dict:
    return json.loads((BUNDLED_VERSION / contract.METADATA_FILE).read_text())


def test_what_is_written_reads_back_the_same(tmp_path: Path) -> None:
    metrics = dict(images=3, psnr=21.3, ssim=0.9, ciede2000=13.8, colorfulness=26.9, truth_colorfulness=0.0)
    written = ModelMetadata(
        arch="unet",
        size=200,
        hints=True,
        accepts_other_sizes=True,
        size_multiple=8,
        created=datetime(2026, 11, 30, 3, 45, 15, tzinfo=timezone.utc),
        epochs=40,
        chroma_gain=1.75,
        train={"data": "photos", "lr": None, "epochs": 1000},
        metrics_split="val",
        metrics=ValidationMetrics(**metrics, colorfulness_ratio=math.nan, palette_js=0.43),  # truth all gray
    )

    written.write(tmp_path)
    read = ModelMetadata.read(tmp_path)

    assert math.isnan(read.metrics.colorfulness_ratio)
    nan_free = {"metrics": {"colorfulness_ratio"}}
    assert read.model_dump(exclude=nan_free) == written.model_dump(exclude=nan_free)
    assert "temperature" not in json.loads((tmp_path / contract.METADATA_FILE).read_text())  # unset: left out


def test_the_bundled_models_file_reads_unchanged_as_format_1() -> None:
    metadata = ModelMetadata.read(BUNDLED_VERSION)

    assert (metadata.format_version, metadata.arch, metadata.size, metadata.size_multiple) == (1, "unet", 200, 8)
    assert metadata.hints and metadata.accepts_other_sizes
    document = bundled_document()
    assert (metadata.chroma_threshold, metadata.cpu_minutes) == (document["chroma_threshold"], document["cpu_minutes"])
    assert metadata.photo_gain.model_dump(exclude_unset=True) == document["photo_gain"]  # fields added since: defaults
    assert metadata.train["data"] == "all"


def test_a_file_with_only_the_size_reads_with_the_defaults_of_an_old_model(tmp_path: Path) -> None:
    metadata = ModelMetadata.read(write_json(tmp_path, {"size": 32}))
    assert (metadata.format_version, metadata.hints, metadata.accepts_other_sizes, metadata.size_multiple) == (1, False, False, 1)


def test_an_unknown_format_version_is_refused_and_named_as_the_only_problem(tmp_path: Path) -> None:
    newer = bundled_document() | {"format_version": 2, "size": "renamed in format 2"}
    with pytest.raises(InvalidMetadata) as refused:
        ModelMetadata.read(write_json(tmp_path, newer))
    assert str(refused.value) == (
        "colorizer.json is invalid: format_version 2 is not one this colorizer reads (1); "
        "was it exported by a newer one?"
    )


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"size": None}, "size: Input should be a valid integer"),
        ({"size": 0}, "size: Input should be greater than 0"),
        ({"hints": "maybe"}, "hints: Input should be a valid boolean"),
        ({"size_mutliple": 16}, "size_mutliple: Extra inputs are not permitted"),
        ({"metrics": {"psnr": 21.0}}, "metrics.images: Field required"),
        ({"format_version": "1"}, "format_version must be an integer"),
    ],
    ids=["size-null", "size-zero", "hints-not-a-bool", "misspelt-field", "metrics-incomplete", "format-a-string"],
)
def test_a_field_that_does_not_validate_is_refused_naming_it(tmp_path: Path, change: dict, reason: str) -> None:
    with pytest.raises(InvalidMetadata, match=reason):
        ModelMetadata.read(write_json(tmp_path, bundled_document() | change))


def test_a_missing_size_is_refused(tmp_path: Path) -> None:
    without_size = {key: value for key, value in bundled_document().items() if key != "size"}
    with pytest.raises(InvalidMetadata, match="size: Field required"):
        ModelMetadata.read(write_json(tmp_path, without_size))


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    tmp_path.joinpath(contract.METADATA_FILE).write_text('{"size": 200,')
    with pytest.raises(InvalidMetadata, match="colorizer.json is invalid: Invalid JSON"):
        ModelMetadata.read(tmp_path)


def test_the_reason_quotes_no_value_or_key_from_the_file(tmp_path: Path) -> None:
    """The service shows it to clients, and the file may hold the training machine's paths."""
    leaky = {"size": "/home/someone/size", "/home/someone/photos": 1, "train": {"data": "/home/someone/photos"}}
    with pytest.raises(InvalidMetadata) as refused:
        ModelMetadata.read(write_json(tmp_path, leaky))
    assert "someone" not in str(refused.value)
    assert str(refused.value).startswith("colorizer.json is invalid: size: ")
