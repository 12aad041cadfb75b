"""What routes depend on, as ``Annotated`` aliases; everything lives on ``app.state`` (see service.app)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from colorizer_service.batching import BatchingQueue
from colorizer_service.budget import Claim
from colorizer_service.colorizer import Colorizer
from colorizer_service.live_model import LiveModel
from colorizer_service.prometheus_metrics import Metrics
from colorizer_service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_colorizer(request: Request) -> Colorizer:
    return request.app.state.colorizer


def get_queue(request: Request) -> BatchingQueue:
    return request.app.state.queue


def get_live_model(request: Request) -> LiveModel:
    return request.app.state.live_model


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_memory_claim(request: Request) -> Claim:
    """This request's claim on the memory budget (made by the MemoryAdmission middleware)."""
    return request.state.memory_claim


SettingsDep = Annotated[Settings, Depends(get_settings)]
ColorizerDep = Annotated[Colorizer, Depends(get_colorizer)]
QueueDep = Annotated[BatchingQueue, Depends(get_queue)]
LiveModelDep = Annotated[LiveModel, Depends(get_live_model)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
MemoryClaimDep = Annotated[Claim, Depends(get_memory_claim)]
