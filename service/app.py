"""The FastAPI app: ``create_app`` wires the parts; the lifespan loads the model and runs the worker.

Nothing is loaded at import: ``uvicorn service.app:app`` starts answering ``/healthz`` at once, and
``/readyz`` turns 200 once the lifespan has loaded and warmed the model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

import anyio
from fastapi import FastAPI

from colorizer_service.api import api_router
from colorizer_service.api.errors import install_error_handlers
from colorizer_service.api.middleware import CrossSiteGuard, MemoryAdmission, RequestMetrics, UploadLimit
from colorizer_service.api.routes import docs
from colorizer_service.batching import BatchingQueue
from colorizer_service.budget import MemoryBudget
from colorizer_service.colorizer import Colorizer
from colorizer_service.live_model import LiveModel, ReloadFailed
from colorizer_service.prometheus_metrics import Metrics
from colorizer_service.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Colorize black-and-white photos. `POST /colorize` a photo and get it back in colour at the same "
    "size; `POST /colorize/batch` several at once. The page at `/` does it in a browser."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app and its parts; the model is loaded later, by the lifespan."""
    settings = settings or Settings()
    metrics = Metrics(max_batch=settings.max_batch)
    queue = BatchingQueue(
        max_batch=settings.max_batch,
        max_delay_s=settings.max_delay_ms / 1000,
        max_size=settings.max_queue,
        on_batch=metrics.observe_batch,
    )
    metrics.queue_depth.set_function(lambda: queue.depth)
    budget = MemoryBudget(settings.memory_budget_bytes)
    metrics.memory_in_flight.set_function(lambda: budget.used_bytes)
    live_model = LiveModel(
        settings.model_dir,
        warm_up_sizes=queue.batch_sizes,
        on_swap=lambda model: metrics.model_version.set(model.version),
    )

    app = FastAPI(
        title="Colorizer",
        version=_package_version(),
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,  # served by routes/docs.py from local files, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.budget = budget
    app.state.metrics = metrics
    app.state.queue = queue
    app.state.live_model = live_model
    app.state.colorizer = Colorizer(
        live_model,
        queue,
        max_pixels=settings.max_pixels,
        max_render_size=settings.max_render_size,
        codec_threads=settings.codec_threads,
        png_compress_level=settings.png_compress_level,
    )

    install_error_handlers(app, metrics=metrics, retry_after_s=settings.retry_after_s)
    # Each add wraps the ones before: a request meets them bottom to top.
    app.add_middleware(
        MemoryAdmission,
        budget=budget,
        max_body_bytes=settings.max_upload_bytes,
        retry_after_s=settings.retry_after_s,
        metrics=metrics,
    )
    app.add_middleware(CrossSiteGuard, metrics=metrics)
    app.add_middleware(UploadLimit, max_bytes=settings.max_upload_bytes, metrics=metrics)
    app.add_middleware(RequestMetrics, metrics=metrics)  # added last: outermost, so it sees every answer
    app.include_router(api_router)
    app.mount(docs.ASSETS_URL, docs.assets(), name="docs-assets")
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    queue: BatchingQueue = app.state.queue
    live_model: LiveModel = app.state.live_model

    queue.start()
    # Load in the background so /healthz answers (and /readyz says 503) while the model warms up.
    tasks = [asyncio.create_task(_load_first_model(live_model))]
    if settings.reload_interval_s > 0:
        tasks.append(asyncio.create_task(live_model.watch(settings.reload_interval_s)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await anyio.to_thread.run_sync(queue.close)


async def _load_first_model(live_model: LiveModel) -> None:
    try:
        await live_model.reload()
    except ReloadFailed as error:
        log.error("No model is being served: %s", error)


def _package_version() -> str:
    try:
        return metadata.version("colorizer")
    except metadata.PackageNotFoundError:
        return "0+unknown"


app = create_app()
