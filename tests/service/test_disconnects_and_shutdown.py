"""Work for a client that has gone is dropped; a job has a deadline; a dead worker fails /healthz; shutdown drains."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
from service_testing import LiveServer, block_worker, encode, metric_samples, photo, wait_for

BOUNDARY = "colorizer-test-boundary"


def upload() -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("p.png", encode(photo()), "image/png")}


def send_and_hang_up(live: LiveServer) -> None:
    """POST a photo to /colorize, then close the connection without reading the answer."""
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + encode(photo()) + f"\r\n--{BOUNDARY}--\r\n".encode()
    address = urlsplit(live.url)
    connection = http.client.HTTPConnection(address.hostname, address.port)
    connection.request("POST", "/colorize", body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    connection.close()


def counter(client: httpx.Client, name: str, **labels: str) -> float:
    return metric_samples(client).get((name, frozenset(labels.items())), 0.0)


def test_a_photo_whose_client_hung_up_never_reaches_the_model(start_server: Callable) -> None:
    with start_server() as live, live.client() as client:
        queue = live.app.state.queue
        blocker = block_worker(queue)
        send_and_hang_up(live)
        wait_for(lambda: counter(client, "colorizer_errors_total", kind="client_disconnected") == 1, "the hang-up")
        batches_before = counter(client, "colorizer_batch_size_count")
        blocker.release.set()
        wait_for(lambda: queue.depth == 0, "the queue to empty")
        assert client.post("/colorize", files=upload()).status_code == 200
        assert counter(client, "colorizer_batch_size_count") == batches_before + 2  # the blocker's, then ours


def test_a_job_past_its_deadline_gets_503_and_leaves_the_queue(start_server: Callable) -> None:
    with start_server(job_timeout_s=1.0) as live, live.client() as client:
        blocker = block_worker(live.app.state.queue)
        response = client.post("/colorize", files=upload())
        blocker.release.set()
        assert (response.status_code, response.json()["error"]) == (503, "job_timeout")
        assert "Retry-After" in response.headers
        assert client.post("/colorize", files=upload()).status_code == 200


def test_healthz_fails_once_the_inference_worker_has_died(start_server: Callable) -> None:
    with start_server() as live, live.client() as client:
        assert client.get("/healthz").status_code == 200
        live.app.state.queue.submit(object(), object())  # inputs without a shape: the worker trips over them
        wait_for(lambda: client.get("/healthz").status_code == 503, "/healthz to notice")
        assert client.get("/healthz").json()["error"] == "worker_dead"
        assert client.post("/colorize", files=upload()).status_code == 503


def test_shutdown_lets_requests_in_flight_finish(start_server: Callable) -> None:
    with start_server() as live, live.client() as client:
        queue = live.app.state.queue
        blocker = block_worker(queue)
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_flight = pool.submit(client.post, "/colorize", files=upload())
            wait_for(lambda: queue.depth == 1, "the request to wait in the queue")
            live.begin_shutdown()
            blocker.release.set()
            assert in_flight.result().status_code == 200
