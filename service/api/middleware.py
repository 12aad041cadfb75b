"""ASGI middleware: the upload size limit, and request metrics."""

from __future__ import annotations

import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import ApiError, error_response
from service.metrics import Metrics

UNMATCHED_ROUTE = "unmatched"


class UploadTooLarge(ApiError):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, "upload_too_large", f"The request body is larger than the limit of {max_bytes} bytes.")


class UploadLimit:
    """Refuse a body over ``max_bytes`` with 413 before reading it all.

    A declared ``Content-Length`` over the limit is refused before any of the body is read; a body
    without one (chunked) is counted as it streams in and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise UploadTooLarge(self.max_bytes)  # FastAPI answers it through the error handlers
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except UploadTooLarge:  # raised where no error handler runs (outside a route's body parsing)
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = UploadTooLarge(self.max_bytes)
        response = error_response(self.metrics, error.status_code, error.kind, str(error.detail))
        await response(scope, receive, send)


class RequestMetrics:
    """Count every request and time it, labelled by route template (never by raw path, which clients choose)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app raises before answering

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            # Routing leaves the matched route in the scope; a request refused before routing has none.
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
