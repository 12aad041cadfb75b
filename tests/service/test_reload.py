"""Model reload (issue 5): a new version written under the model root is served without a restart."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from service_testing import COOL, LiveServer, block_worker, encode, photo, wait_for

from colorizer_core import contract
from colorizer_service.api.routes.colorize import VERSION_HEADER
from colorizer_service.batching import BatchingQueue

WAIT_S = 120.0


def colorize(client: httpx.Client) -> tuple[str, str]:
    """Colorize a gray picture; which model answered (its version), and which way it tinted."""
    response = client.post("/colorize", files={"file": ("p.png", encode(photo(24, 16, "L")), "image/png")})
    assert response.status_code == 200, response.text
    red, _, blue = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), np.int16).transpose(2, 0, 1)
    return response.headers[VERSION_HEADER], "warm" if red.mean() > blue.mean() else "cool"


def write_broken_version(live: LiveServer, version: int) -> Path:
    """A version folder that looks complete but holds no loadable SavedModel."""
    folder = live.model_root / str(version)
    (folder / "variables").mkdir(parents=True)
    (folder / contract.VARIABLES_INDEX_FILE).write_bytes(b"")
    (folder / contract.SAVED_MODEL_FILE).write_bytes(b"this is not a protocol buffer")
    (folder / contract.METADATA_FILE).write_text(json.dumps({"size": 32}))
    return folder


def test_reload_serves_the_newer_version(start_server: Callable) -> None:
    with start_server() as live, live.admin_client() as client:
        assert colorize(client) == ("1", "warm")
        live.write_version(2, COOL)
        response = client.post("/v1/model/reload")
        assert response.json() == {"previous_version": 1, "version": 2, "changed": True, "skipped": []}
        assert colorize(client) == ("2", "cool")
        assert client.get("/v1/model").json()["version"] == 2


def test_reload_without_a_newer_version_changes_nothing(start_server: Callable) -> None:
    with start_server() as live, live.admin_client() as client:
        response = client.post("/v1/model/reload")
        assert response.json() == {"previous_version": 1, "version": 1, "changed": False, "skipped": []}


def test_request_in_flight_during_a_reload_finishes_on_the_old_model(start_server: Callable) -> None:
    with start_server() as live, live.admin_client() as client:
        queue: BatchingQueue = live.app.state.queue
        blocker = block_worker(queue)
        with ThreadPoolExecutor(max_workers=1) as pool, live.client() as other_client:
            in_flight = pool.submit(colorize, other_client)
            wait_for(lambda: queue.depth == 1, "the request to reach the queue")
            live.write_version(2, COOL)
            assert client.post("/v1/model/reload").json()["version"] == 2
            blocker.release.set()
            assert in_flight.result(WAIT_S) == ("1", "warm")
        assert colorize(client) == ("2", "cool")


def test_reload_skips_a_broken_newer_version_and_keeps_the_old_model_serving(start_server: Callable) -> None:
    with start_server() as live, live.admin_client() as client:
        write_broken_version(live, 2)
        response = client.post("/v1/model/reload")
        assert response.status_code == 200
        assert (response.json()["version"], response.json()["changed"]) == (1, False)
        assert [entry["version"] for entry in response.json()["skipped"]] == [2]
        assert colorize(client) == ("1", "warm")
        assert "could not be loaded" in client.get("/v1/model").json()["skipped"][0]["reason"]


def test_service_without_a_model_is_not_ready_until_one_is_loaded(start_server: Callable) -> None:
    with start_server(versions=(), wait_until_ready=False) as live, live.admin_client() as client:
        assert client.get("/healthz").status_code == 200
        for path in ("/readyz", "/v1/model"):
            response = client.get(path)
            assert (response.status_code, response.json()["error"]) == (503, "model_not_ready")
            assert "Retry-After" in response.headers
        upload = client.post("/colorize", files={"file": ("p.png", encode(photo()), "image/png")})
        assert (upload.status_code, upload.json()["error"]) == (503, "model_not_ready")

        live.write_version(1, COOL)
        assert client.post("/v1/model/reload").json()["version"] == 1
        assert client.get("/readyz").status_code == 200


def test_watch_picks_up_a_new_version_and_survives_a_broken_one(start_server: Callable) -> None:
    with start_server(reload_interval_s=0.1) as live, live.admin_client() as client:
        live.write_version(2, COOL)
        wait_for(lambda: client.get("/v1/model").json()["version"] == 2, "version 2 to be served")
        assert colorize(client) == ("2", "cool")

        write_broken_version(live, 3)
        wait_for(lambda: client.get("/v1/model").json()["skipped"] != [], "version 3 to be tried")
        assert colorize(client) == ("2", "cool")
