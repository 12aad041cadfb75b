"""The served model: what it is, and swapping in a newer version (the control plane: see api.security)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from colorizer_core.metadata import ModelMetadata
from colorizer_service.api.deps import LiveModelDep
from colorizer_service.api.errors import error_responses
from colorizer_service.api.security import AdminIfConfigured, AdminOnly
from colorizer_service.live_model import SkippedVersion

router = APIRouter(prefix="/v1/model", tags=["model"])

# An absolute path inside a string (POSIX, Windows drive or UNC), not one inside a word ("images/s").
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:-])(?:[A-Za-z]:[\\/]|[\\/]{1,2}|~[\\/])(?:[^\s\\/\"']+[\\/])*([^\s\\/\"']*)")


class Skipped(BaseModel):
    version: int
    reason: str = Field(description="Why it is not served: incomplete (tried again later), unloadable, or failed the probe.")


class ModelInfo(BaseModel):
    version: int
    metadata: ModelMetadata = Field(description="The version's colorizer.json, its absolute paths cut to their last part.")
    skipped: list[Skipped] = Field(description="Newer versions the last reload passed over, and why.")


class Reloaded(BaseModel):
    previous_version: int | None
    version: int
    changed: bool = Field(description="False when no newer version could be served.")
    skipped: list[Skipped] = Field(description="Newer versions passed over, and why.")


@router.get("", responses=error_responses(401, 403, 503), dependencies=[AdminIfConfigured])
async def model_info(live_model: LiveModelDep) -> ModelInfo:
    """The version being served, its colorizer.json, and the versions skipped (admin token, once one is set)."""
    model = live_model.current
    shown = ModelMetadata.model_validate(without_paths(model.metadata.model_dump(mode="json")))
    return ModelInfo(version=model.version, metadata=shown, skipped=_skipped(live_model.skipped))


@router.post("/reload", responses=error_responses(401, 403, 503), dependencies=[AdminOnly])
async def reload_model(live_model: LiveModelDep) -> Reloaded:
    """Serve the newest version that loads and passes the probe; the old model serves meanwhile (admin token)."""
    result = await live_model.reload()
    return Reloaded(
        previous_version=result.previous_version,
        version=result.version,
        changed=result.changed,
        skipped=_skipped(result.skipped),
    )


def without_paths(value: Any) -> Any:
    """``value`` (JSON data) with each absolute path in its strings cut to ``.../<last part>``."""
    if isinstance(value, dict):
        return {key: without_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_paths(item) for item in value]
    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub(lambda match: f".../{match.group(1)}", value)
    return value


def _skipped(skipped: tuple[SkippedVersion, ...]) -> list[Skipped]:
    return [Skipped(version=entry.version, reason=entry.reason) for entry in skipped]
