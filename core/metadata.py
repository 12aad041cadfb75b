"""``colorizer.json``: what an exported model version says about itself, as one typed record.

The exporter writes it with ``ModelMetadata.write``; everything that loads a model reads it with
``ModelMetadata.read``. Only ``size`` is required: files written by hand (tests, other tools) may
leave the rest out, and one without ``format_version`` is read as format 1. A file that does not
validate raises ``InvalidMetadata``, whose message names the fields at fault but never quotes the
file (it may hold the training machine's paths): the service shows that message to clients.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from colorizer_core.contract import METADATA_FILE

FORMAT_VERSION = 1  # what ``write`` records; raise it for a change that older readers would misread
READABLE_FORMAT_VERSIONS = frozenset({FORMAT_VERSION})


class InvalidMetadata(ValueError):
    """``colorizer.json`` is not JSON, lacks or mistypes a field, or is of a format this code does not read."""


class ValidationMetrics(BaseModel):
    """Means over the images of the held-out split named by ``metrics_split`` (``trainer/evaluate.py``)."""

    # NaN is written as NaN (as Python's json module reads and writes it), not as null, which would not read back.
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")

    images: PositiveInt
    psnr: float = Field(description="dB; higher is better.")
    ssim: float
    ciede2000: float = Field(description="Mean CIEDE2000 colour difference per pixel; lower is better.")
    ciede2000_by_collection: float | None = Field(
        None, description="The same, averaged per collection first, so each weighs the same; absent in older files."
    )
    colorfulness: float = Field(description="Hasler-Süsstrunk colourfulness of the predictions.")
    truth_colorfulness: float = Field(description="The same, of the true colour photos.")
    colorfulness_ratio: float = Field(description="colorfulness / truth_colorfulness; NaN if the truth is all gray.")
    palette_js: float = Field(description="Jensen-Shannon divergence (bits) of predicted and true Lab (a, b) histograms.")


class PhotoGainChoice(BaseModel):
    """A chroma gain picked for each photo from its scene (trainer/photo_gain.py), its weights in the SavedModel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gains: list[float] = Field(description="The gains a photo may get; one replaces chroma_gain.")
    lean: float = Field(description="ΔE2000 a photo may give up per unit of gain, a choice made on validation.")
    fitted_on: list[str] = Field(description="The training runs (folder names) whose held-out photos it was fitted on.")
    scene: bool = Field(True, description="Whether the backbone's features of the photo are among what it reads.")
    doubt: bool = Field(False, description="Whether the members' doubt about the photo's colour is among what it reads.")


class ModelMetadata(BaseModel):
    """One version's ``colorizer.json``: how to serve the model, then where it came from."""

    # Unknown fields are refused, so a misspelt one (``size_mutliple``) cannot silently take a default.
    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION
    # How to serve it.
    size: PositiveInt = Field(description="The native side, in pixels, of the square photo the model sees.")
    hints: bool = Field(False, description="The SavedModel takes the contract's second input, colour hints.")
    accepts_other_sizes: bool = Field(False, description="It also takes squares of other sides (see size_multiple).")
    size_multiple: PositiveInt = Field(1, description="A side other than the native one must be a multiple of this.")
    # Where it came from.
    arch: str | None = Field(None, description="The architecture it was trained as (colorize-train --arch).")
    created: AwareDatetime | None = None
    dataset_fingerprint: str | None = Field(
        None, description="SHA-256 over the names and contents of every file of the dataset it trained on."
    )
    epochs: NonNegativeInt | None = None
    steps: NonNegativeInt | None = None
    cpu_minutes: NonNegativeFloat | None = Field(None, description="Process CPU time the training took.")
    chroma_gain: float | None = Field(None, description="Decoding choice made on validation: chroma scaled by this.")
    chroma_threshold: float | None = Field(
        None, description="Decoding choice made on validation: each pixel's chroma lowered by this (Lab units) before the gain."
    )
    temperature: float | None = Field(None, description="Decoding choice of a classes head: annealed-mean temperature.")
    hint_spread: float | None = Field(
        None, description="Decoding choice made on validation: how far a colour hint is spread after the network (pixels at the native size); 0: not."
    )
    hinted_max_gain: float | None = Field(
        None, description="Decoding choice made on validation: the most chroma gain a photo given hints keeps; 0: its colour is the hints' alone."
    )
    photo_gain: PhotoGainChoice | None = Field(None, description="Decoding choice made on validation: a gain per photo.")
    train: dict[str, JsonValue] | None = Field(
        None, description="The training options (TrainConfig), paths cut to their folder names."
    )
    metrics_split: str | None = Field(None, description="The dataset split the metrics were measured on.")
    metrics: ValidationMetrics | None = None

    @model_validator(mode="before")
    @classmethod
    def _a_format_this_code_reads(cls, data: Any) -> Any:
        """Refuse another format before its fields are checked, so that is the one error reported."""
        found = data.get("format_version", FORMAT_VERSION) if isinstance(data, dict) else FORMAT_VERSION
        if type(found) is not int:
            raise PydanticCustomError("format_version_type", "format_version must be an integer")
        if found not in READABLE_FORMAT_VERSIONS:
            raise PydanticCustomError(
                "format_version_unknown",
                "format_version {found} is not one this colorizer reads ({readable}); was it exported by a newer one?",
                {"found": found, "readable": ", ".join(map(str, sorted(READABLE_FORMAT_VERSIONS)))},
            )
        return data

    @classmethod
    def read(cls, version_dir: Path) -> ModelMetadata:
        """The metadata of the version in ``version_dir``; ``InvalidMetadata`` if it does not validate.

        ``OSError`` if the file cannot be read (a copy still in progress: see ``contract.missing_files``).
        """
        try:
            return cls.model_validate_json((version_dir / METADATA_FILE).read_bytes())
        except ValidationError as error:
            raise InvalidMetadata(f"{METADATA_FILE} is invalid: {_without_values(error)}") from None

    def write(self, version_dir: Path) -> Path:
        """Write ``version_dir/colorizer.json`` (fields left unset are left out); return its path."""
        path = version_dir / METADATA_FILE
        path.write_text(self.model_dump_json(indent=2, exclude_none=True) + "\n")
        return path


def _without_values(error: ValidationError) -> str:
    """Each problem as ``field: what is wrong``, quoting no value and no field name that is not a plain word."""
    problems = []
    for problem in error.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) if _plain(part) else "<field>" for part in problem["loc"])
        problems.append(f"{where}: {problem['msg']}" if where else problem["msg"])
    return "; ".join(problems)


def _plain(part: int | str) -> bool:
    return isinstance(part, int) or part.isidentifier()
