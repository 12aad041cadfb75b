"""Every error answer has one JSON shape, ``{"error": kind, "detail": message}``, and is counted by kind."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from colorizer_core.imaging import BadImage, BadOptions
from colorizer_service.api.lifetime import ClientDisconnected, JobTimedOut
from colorizer_service.batching import InferenceFailed, QueueClosed, QueueFull
from colorizer_service.budget import NeverFits, OverBudget
from colorizer_service.live_model import ModelNotReady, ReloadFailed
from colorizer_service.prometheus_metrics import Metrics

BAD_IMAGE_STATUS = {
    "empty_file": 400,
    "not_an_image": 415,
    "unsupported_format": 415,
    "corrupt_image": 422,
    "too_many_pixels": 413,
}

# Nginx's code for "the client closed the request": logged and counted, though no one reads the answer.
CLIENT_CLOSED_REQUEST = 499

# The service's own failures: status, kind, and whether the client should come back later.
SERVICE_ERRORS: dict[type[Exception], tuple[int, str, bool]] = {
    QueueFull: (503, "queue_full", True),
    OverBudget: (503, "over_memory_budget", True),
    NeverFits: (413, "too_large_for_memory", False),
    JobTimedOut: (503, "job_timeout", True),
    ModelNotReady: (503, "model_not_ready", True),
    QueueClosed: (503, "shutting_down", True),
    ReloadFailed: (503, "no_servable_model", True),
    InferenceFailed: (500, "inference_failed", False),
    ClientDisconnected: (CLIENT_CLOSED_REQUEST, "client_disconnected", False),
}


class ErrorBody(BaseModel):
    error: str = Field(description="What kind of error, for programs: e.g. not_an_image, queue_full.")
    detail: str = Field(description="What was wrong, for people.")


class ApiError(HTTPException):
    """An HTTP error with its own ``kind``; raised by routes and middleware."""

    def __init__(self, status_code: int, kind: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.kind = kind


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries that document error answers in the OpenAPI schema."""
    return {status: {"model": ErrorBody, "description": HTTPStatus(status).phrase} for status in statuses}


def error_response(
    metrics: Metrics, status: int, kind: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    metrics.errors.labels(kind).inc()
    return JSONResponse({"error": kind, "detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, *, metrics: Metrics, retry_after_s: int) -> None:
    """Answer each known failure with its status and the shared JSON body."""

    async def service_error(request: Request, error: Exception) -> JSONResponse:
        status, kind, retry_later = SERVICE_ERRORS[type(error)]
        if retry_later:
            headers = {"Retry-After": str(retry_after_s)}
            return error_response(metrics, status, kind, f"{error} Retry in {retry_after_s} s.", headers)
        return error_response(metrics, status, kind, str(error))

    async def bad_image(request: Request, error: BadImage) -> JSONResponse:
        return error_response(metrics, BAD_IMAGE_STATUS.get(error.kind, 400), error.kind, error.message)

    async def bad_options(request: Request, error: BadOptions) -> JSONResponse:
        return error_response(metrics, 422, error.kind, error.message)

    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(metrics, 422, *_describe_validation(error))

    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        kind = getattr(error, "kind", None) or _snake_case(HTTPStatus(error.status_code).phrase)
        return error_response(metrics, error.status_code, kind, str(error.detail), error.headers)

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        # Starlette's ServerErrorMiddleware still logs the traceback; the client gets the usual shape.
        return error_response(metrics, 500, "internal_error", "An unexpected error; the service logged it.")

    for error_type in SERVICE_ERRORS:
        app.add_exception_handler(error_type, service_error)
    app.add_exception_handler(BadImage, bad_image)
    app.add_exception_handler(BadOptions, bad_options)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _describe_validation(error: RequestValidationError) -> tuple[str, str]:
    problems = error.errors()
    missing = [str(problem["loc"][-1]) for problem in problems if problem["type"] == "missing"]
    if missing:
        return "missing_field", f"Missing required field(s): {', '.join(missing)}."
    return "invalid_request", "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems)


def _snake_case(phrase: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")
