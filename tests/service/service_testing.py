"""Helpers for the service tests: a real uvicorn on loopback, tiny models, small pictures, metrics."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from tiny_models import make_model_dir
from waiting import wait_until

from colorizer_service.app import create_app
from colorizer_service.batching import BatchingQueue
from colorizer_service.settings import Settings

# Each served model multiplies gray by a tint, so a test can tell which model answered.
WARM = (1.0, 0.8, 0.6)  # red > green > blue
COOL = (0.6, 0.8, 1.0)  # blue > green > red
MODEL_SIZE = 32
READY_TIMEOUT_S = 120.0

# The session server's limits: small, so tests can cross them with small files.
MAX_UPLOAD_MB = 0.25
MAX_PIXELS = 200_000
MAX_BATCH = 8
MAX_BATCH_FILES = 6
ADMIN_TOKEN = "test-admin-token-" + "0123456789abcdef" * 2  # long enough for the settings' minimum


@dataclass
class LiveServer:
    url: str
    app: FastAPI
    model_root: Path
    uvicorn_server: uvicorn.Server

    def begin_shutdown(self) -> None:
        """What SIGTERM does: stop taking connections, let requests in flight finish, then stop."""
        self.uvicorn_server.should_exit = True

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60.0, **options)

    def admin_client(self) -> httpx.Client:
        """A client that sends the admin token (``ADMIN_TOKEN``, which the test servers are given)."""
        return self.client(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def write_version(self, version: int, tint: tuple[float, float, float]) -> Path:
        """Export a new model version into the served root (as the trainer would)."""
        return make_model_dir(self.model_root.parents[1], version=version, tint=tint, size=MODEL_SIZE)


@contextmanager
def live_server(settings: Settings, model_root: Path, *, wait_until_ready: bool = True) -> Iterator[LiveServer]:
    """Run ``create_app(settings)`` under uvicorn on a free loopback port, in a thread."""
    app = create_app(settings)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", timeout_graceful_shutdown=settings.shutdown_grace_s
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "uvicorn to start")
        live = LiveServer(f"http://127.0.0.1:{port}", app, model_root, server)
        if wait_until_ready:
            with live.client() as client:
                wait_for(lambda: client.get("/readyz").status_code == 200, "the model to load")
        yield live
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        listener.close()


def wait_for(condition: Callable[[], object], what: str) -> None:
    """``wait_until`` with the service tests' timeout, ``READY_TIMEOUT_S``."""
    wait_until(condition, what, READY_TIMEOUT_S)


def server_settings(model_root: Path, **overrides: Any) -> Settings:
    limits: dict[str, Any] = {
        "model_dir": model_root,
        "max_upload_mb": MAX_UPLOAD_MB,
        "max_pixels": MAX_PIXELS,
        "max_batch": MAX_BATCH,
        "max_batch_files": MAX_BATCH_FILES,
        "max_delay_ms": 50.0,  # generous, so that a burst of requests reliably shares batches
        "admin_token": ADMIN_TOKEN,
    }
    return Settings(**(limits | overrides))


class BlockingModel:
    """Stands in for the model in one job, holding the inference worker until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.entered.set()
        self.release.wait(READY_TIMEOUT_S)
        return np.zeros((*batch.shape[:-1], 3), np.float32)


def block_worker(queue: BatchingQueue) -> BlockingModel:
    """Occupy the app's inference worker (so tests can fill its queue or hold requests in it)."""
    blocker = BlockingModel()
    queue.submit(blocker, np.zeros((MODEL_SIZE, MODEL_SIZE, 1), np.float32))
    if not blocker.entered.wait(READY_TIMEOUT_S):
        raise TimeoutError("The inference worker never took the blocking job")
    return blocker


def encode(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int = 48, height: int = 32, mode: str = "RGB") -> Image.Image:
    """A small colourful picture: red grows left to right, green top to bottom, blue in stripes."""
    x, y = np.meshgrid(np.arange(width), np.arange(height))  # (H, W) each
    red = 255 * x // max(width - 1, 1)
    green = 255 * y // max(height - 1, 1)
    blue = (7 * x + 13 * y) % 256
    return Image.fromarray(np.stack([red, green, blue], axis=-1).astype(np.uint8), "RGB").convert(mode)


def metric_samples(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics`` by (name, labels)."""
    text = client.get("/metrics").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
