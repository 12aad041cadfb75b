"""A request's work lives only as long as its client waits, and at most ``COLORIZER_JOB_TIMEOUT_S``.

Starlette does not cancel a route when its client hangs up; ``for_client`` does: it watches for the
disconnect while the work runs and cancels the work when it comes, so photos still being decoded
never reach the queue and those waiting in it leave it unrun.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client hung up before its answer was ready; the work for it was dropped."""


class JobTimedOut(Exception):
    """The work took longer than the job deadline and was dropped."""


async def for_client(request: Request, work: Awaitable[T], *, timeout_s: float) -> T:
    """``await work``, cancelled if the client disconnects (``ClientDisconnected``) or after ``timeout_s`` (``JobTimedOut``)."""
    job = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({job, gone}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not job.done():
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)  # let it give back what it holds
    if job in done:
        return job.result()
    if gone in done:
        raise ClientDisconnected("The client disconnected; its work was dropped.")
    raise JobTimedOut(f"The photos took longer than the service's limit of {timeout_s:g} s and were dropped.")


async def _disconnected(request: Request) -> None:
    """Return once the client has gone (the body is read by now, so the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
