"""Health, readiness, metrics, model info, docs; answers when the queue is full or the model throws."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from service_testing import (
    MODEL_SIZE,
    LiveServer,
    block_worker,
    encode,
    live_server,
    metric_samples,
    photo,
    server_settings,
)

from colorizer_core import contract
from colorizer_service.batching import BatchingQueue


def test_healthz_says_alive(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_names_the_served_version(client: httpx.Client) -> None:
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready", "model_version": 1, "takes_hints": False})


def test_model_info_shows_version_and_metadata(server: LiveServer) -> None:
    with server.admin_client() as client:
        info = client.get("/v1/model").json()
    assert info["version"] == 1
    assert info["metadata"]["size"] == MODEL_SIZE
    assert info["skipped"] == []


def test_metrics_count_requests_and_errors_by_kind(client: httpx.Client) -> None:
    before = metric_samples(client)
    client.post("/colorize", files={"file": ("x.png", b"nonsense", "image/png")})
    after = metric_samples(client)

    def grew(name: str, **labels: str) -> bool:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) == before.get(key, 0.0) + 1

    assert grew("colorizer_errors_total", kind="not_an_image")
    assert grew("colorizer_http_requests_total", method="POST", route="/colorize", status="415")
    assert grew("colorizer_http_request_duration_seconds_count", route="/colorize")
    assert ("colorizer_queue_depth", frozenset()) in after


def test_docs_and_openapi_are_served(client: httpx.Client) -> None:
    assert "swagger" in client.get("/docs").text.lower()
    assert client.get("/redoc").status_code == 404  # it would fetch its script from a CDN
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/colorize", "/colorize/batch", "/healthz", "/readyz", "/v1/model", "/v1/model/reload"} <= set(paths)


def test_full_queue_answers_503_with_retry_after(server: LiveServer, client: httpx.Client) -> None:
    queue: BatchingQueue = server.app.state.queue
    blocker = block_worker(queue)
    blank = np.zeros((MODEL_SIZE, MODEL_SIZE, 1), np.float32)
    waiting = [queue.submit(blocker, blank) for _ in range(queue.max_size)]
    try:
        response = client.post("/colorize", files={"file": ("p.png", encode(photo()), "image/png")})
    finally:
        blocker.release.set()
    assert (response.status_code, response.json()["error"]) == (503, "queue_full")
    assert int(response.headers["Retry-After"]) >= 1
    assert all(job.result(30) is not None for job in waiting)
    assert client.post("/colorize", files={"file": ("p.png", encode(photo()), "image/png")}).status_code == 200


def export_model_that_fails_on_white(tmp_path: Path) -> Path:
    """A real SavedModel that colorizes like the others but raises on any input pixel that is pure white.

    Warm-up (all black) passes, so the service starts; a white upload then makes inference throw.
    """
    import tensorflow as tf

    class FailsOnWhite(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name=contract.INPUT_KEY)])
        def serve(self, gray: tf.Tensor) -> dict[str, tf.Tensor]:
            check = tf.debugging.assert_less(tf.reduce_max(gray), 1.0, message="white pixel (on purpose)")
            with tf.control_dependencies([check]):
                return {contract.OUTPUT_KEY: tf.concat([gray, gray, gray], axis=-1)}

    version_dir = tmp_path / "models" / "colorizer" / "1"
    module = FailsOnWhite()
    tf.saved_model.save(module, str(version_dir), signatures={contract.SIGNATURE: module.serve})
    (version_dir / contract.METADATA_FILE).write_text(json.dumps({"arch": "fails-on-white", "size": MODEL_SIZE}))
    return version_dir.parent


def test_inference_error_answers_500_and_the_service_keeps_serving(tmp_path: Path) -> None:
    model_root = export_model_that_fails_on_white(tmp_path)
    with live_server(server_settings(model_root), model_root) as live, live.client() as client:
        white = client.post("/colorize", files={"file": ("w.png", encode(Image.new("L", (20, 20), 255)), "image/png")})
        assert (white.status_code, white.json()["error"]) == (500, "inference_failed")
        assert "white pixel" in white.json()["detail"]
        dark = client.post("/colorize", files={"file": ("d.png", encode(Image.new("L", (20, 20), 40)), "image/png")})
        assert dark.status_code == 200


def test_docs_need_nothing_from_the_internet(client: httpx.Client) -> None:
    page = client.get("/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(asset.startswith("/") for asset in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_readiness_says_whether_the_served_model_takes_hints_without_the_admin_token(
    client: httpx.Client, hints_server: LiveServer
) -> None:
    assert client.get("/readyz").json()["takes_hints"] is False
    with hints_server.client() as hints_client:
        assert hints_client.get("/readyz").json()["takes_hints"] is True
