"""ASGI middleware: the upload size limit, cross-site refusal, memory admission, and request metrics."""

from __future__ import annotations

import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from colorizer_service.api.errors import SERVICE_ERRORS, ApiError, error_response
from colorizer_service.api.security import fetched_by_another_site
from colorizer_service.budget import MemoryBudget, NeverFits, OverBudget, body_cost
from colorizer_service.prometheus_metrics import Metrics

UNMATCHED_ROUTE = "unmatched"
CLAIM_STATE_KEY = "memory_claim"  # request.state.memory_claim: the request's share of the memory budget
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


class CrossSiteGuard:
    """Refuse, before reading its body, any unsafe request that a browser says another site's page sent.

    Such a request cannot read its answer (the service allows no cross-origin reads), so refusing
    it costs no legitimate client anything, and spares the service work a page elsewhere asked for.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            if fetched_by_another_site(Headers(scope=scope)):
                detail = "Requests from another site's page are refused."
                response = error_response(self.metrics, 403, "cross_site_request", detail)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class MemoryAdmission:
    """Give each request a claim on the memory budget, holding its body's share before the body is read.

    Routes take more shares of the same claim (``request.state.memory_claim``); all of them are given
    back once the answer is sent. A body without a declared length is budgeted at the upload limit.
    """

    def __init__(
        self, app: ASGIApp, *, budget: MemoryBudget, max_body_bytes: int, retry_after_s: int, metrics: Metrics
    ) -> None:
        self.app = app
        self.budget = budget
        self.max_body_bytes = max_body_bytes
        self.retry_after_s = retry_after_s
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        claim = self.budget.claim()
        scope.setdefault("state", {})[CLAIM_STATE_KEY] = claim
        try:
            body_bytes = self._body_bytes(Headers(scope=scope))
            if body_bytes:
                try:
                    body = await claim.take(body_cost(body_bytes), "this request's body")
                    body.settle(body.nbytes)  # held to the end, but nothing that waits for it to be freed
                except (OverBudget, NeverFits) as error:
                    await self._refuse(error, scope, receive, send)
                    return
            await self.app(scope, receive, send)
        finally:
            claim.release()

    def _body_bytes(self, headers: Headers) -> int:
        declared = headers.get("content-length", "")
        if declared.isdigit():
            return min(int(declared), self.max_body_bytes)
        return self.max_body_bytes if "chunked" in headers.get("transfer-encoding", "").lower() else 0

    async def _refuse(self, error: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        status, kind, retry_later = SERVICE_ERRORS[type(error)]
        headers = {"Retry-After": str(self.retry_after_s)} if retry_later else None
        await error_response(self.metrics, status, kind, str(error), headers)(scope, receive, send)


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
