"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from colorizer_service.api.deps import LiveModelDep, MetricsDep, QueueDep
from colorizer_service.api.errors import ApiError, error_responses

router = APIRouter(tags=["operations"])


class Alive(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    status: str = "ready"
    model_version: int
    takes_hints: bool  # what a client (the page) may send; the model's details need the admin token


@router.get("/healthz", responses=error_responses(503))
async def healthz(queue: QueueDep) -> Alive:
    """The process is up and its inference worker is running (503 once that worker has died: restart it)."""
    if not queue.alive:
        raise ApiError(503, "worker_dead", "The inference worker is not running; this process needs a restart.")
    return Alive()


@router.get("/readyz", responses=error_responses(503))
async def readyz(live_model: LiveModelDep) -> Ready:
    """A model is loaded and warm (503 until then)."""
    model = live_model.current
    return Ready(model_version=model.version, takes_hints=model.takes_hints)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests, latency, batch sizes, queue depth, memory in flight, errors by kind (no token)."""
    return Response(metrics.render(), media_type=metrics.content_type)
