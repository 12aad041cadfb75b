"""The served model: what it is, and swapping in a newer version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.api.deps import LiveModelDep
from service.api.errors import error_responses

router = APIRouter(prefix="/v1/model", tags=["model"])


class ModelInfo(BaseModel):
    version: int
    metadata: dict[str, Any] = Field(description="The version's colorizer.json.")
    reload_error: str | None = Field(description="Why the last reload failed, if it did.")


class Reloaded(BaseModel):
    previous_version: int | None
    version: int
    changed: bool = Field(description="False when the highest version was already being served.")


@router.get("", responses=error_responses(503))
async def model_info(live_model: LiveModelDep) -> ModelInfo:
    """The version being served and its colorizer.json."""
    model = live_model.current
    return ModelInfo(version=model.version, metadata=model.metadata, reload_error=live_model.last_error)


@router.post("/reload", responses=error_responses(500))
async def reload_model(live_model: LiveModelDep) -> Reloaded:
    """Serve the highest version now under the model folder; on failure the old model keeps serving."""
    result = await live_model.reload()
    return Reloaded(previous_version=result.previous_version, version=result.version, changed=result.changed)
