"""The memory budget: one admission control over the memory that requests in flight hold."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image
from service_testing import block_worker, encode, metric_samples, wait_for

from colorizer_service.budget import MemoryBudget, NeverFits, OverBudget, photo_cost
from colorizer_service.settings import BYTES_PER_MB

PHOTO = (200, 200)  # fits the small budget below once, not twice
SMALL_BUDGET_MB = 1.5 * photo_cost(PHOTO[0] * PHOTO[1], 32) / BYTES_PER_MB
TOO_BIG_FOR_IT = (300, 300)  # under the pixel limit, over the whole budget


def upload(size: tuple[int, int], name: str = "p.png") -> tuple[str, bytes, str]:
    """A flat gray PNG: a few hundred bytes of body, so the photo's own share is what counts."""
    return (name, encode(Image.new("L", size, 128)), "image/png")


def test_a_share_that_does_not_fit_is_refused_at_once() -> None:
    async def scenario() -> None:
        budget = MemoryBudget(100)
        await budget.claim().take(60, "the first")
        with pytest.raises(OverBudget):
            await budget.claim().take(60, "the second")

    asyncio.run(scenario())


def test_a_share_larger_than_the_whole_budget_never_fits() -> None:
    async def scenario() -> None:
        with pytest.raises(NeverFits):
            await MemoryBudget(100).claim().take(101, "a giant")

    asyncio.run(scenario())


def test_a_claim_with_work_in_progress_waits_for_its_own_work_to_settle() -> None:
    async def scenario() -> None:
        budget = MemoryBudget(100)
        claim = budget.claim()
        first = await claim.take(60, "the first photo")
        second = asyncio.ensure_future(claim.take(60, "the second photo"))
        await asyncio.sleep(0)
        assert not second.done()
        first.settle(10)  # done: only its 10-byte answer stays
        await second
        assert budget.used_bytes == 70
        claim.release()
        assert budget.used_bytes == 0

    asyncio.run(scenario())


def test_photos_over_the_budget_get_503_with_retry_after(start_server: Callable) -> None:
    with start_server(memory_budget_mb=SMALL_BUDGET_MB) as live, live.client() as client:
        blocker = block_worker(live.app.state.queue)
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(client.post, "/colorize", files={"file": upload(PHOTO)})
            wait_for(lambda: live.app.state.queue.depth == 1, "the first photo to wait in the queue")
            refused = client.post("/colorize", files={"file": upload(PHOTO)})
            blocker.release.set()
            assert waiting.result().status_code == 200
        assert (refused.status_code, refused.json()["error"]) == (503, "over_memory_budget")
        assert int(refused.headers["Retry-After"]) >= 1
        assert client.post("/colorize", files={"file": upload(PHOTO)}).status_code == 200


def test_a_photo_larger_than_the_whole_budget_is_413(start_server: Callable) -> None:
    with start_server(memory_budget_mb=SMALL_BUDGET_MB) as live, live.client() as client:
        response = client.post("/colorize", files={"file": upload(TOO_BIG_FOR_IT)})
        assert (response.status_code, response.json()["error"]) == (413, "too_large_for_memory")


def test_a_batch_photo_that_never_fits_is_its_own_error_and_the_rest_come_back(start_server: Callable) -> None:
    with start_server(memory_budget_mb=SMALL_BUDGET_MB) as live, live.client() as client:
        names_and_sizes = [("a.png", PHOTO), ("big.png", TOO_BIG_FOR_IT), ("b.png", PHOTO)]
        files = [("files", upload(size, name)) for name, size in names_and_sizes]
        response = client.post("/colorize/batch", files=files)
        assert response.status_code == 200
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            assert [entry["ok"] for entry in manifest["files"]] == [True, False, True]
            assert json.loads(archive.read("big.error.json"))["error"] == "too_large_for_memory"


def test_every_request_gives_its_memory_back(start_server: Callable) -> None:
    with start_server() as live, live.client() as client:
        client.post("/colorize", files={"file": upload(PHOTO)})
        client.post("/colorize/batch", files=[("files", upload(PHOTO)), ("files", upload(PHOTO))])
        client.post("/colorize", files={"file": ("bad.png", b"not an image", "image/png")})
        assert live.app.state.budget.used_bytes == 0
        assert metric_samples(client)[("colorizer_memory_in_flight_bytes", frozenset())] == 0
