"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from service.api.deps import LiveModelDep, MetricsDep
from service.api.errors import error_responses

router = APIRouter(tags=["operations"])


class Alive(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    status: str = "ready"
    model_version: int


@router.get("/healthz")
async def healthz() -> Alive:
    """The process is up and answering."""
    return Alive()


@router.get("/readyz", responses=error_responses(503))
async def readyz(live_model: LiveModelDep) -> Ready:
    """A model is loaded and warm (503 until then)."""
    return Ready(model_version=live_model.current.version)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests, latency, batch sizes, queue depth, errors by kind."""
    return Response(metrics.render(), media_type=metrics.content_type)
