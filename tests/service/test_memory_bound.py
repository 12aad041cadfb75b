"""Under a flood of maximum-size uploads, the server's peak memory stays within its budget (slow)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image
from service_testing import encode

from colorizer_service.settings import BYTES_PER_MB

SIDE = 4000  # each upload is a 23 KB PNG of SIDE x SIDE flat gray: the attack
BUDGET_MB = 1100  # two such photos at a time (each is budgeted at its worst case, ~490 MiB)
# Beyond the budget: thread stacks, the allocator's slack, and this process's own client side.
ALLOWANCE_MB = 128
SINGLE_UPLOADS = 16
BATCHES = 4
FILES_PER_BATCH = 4
STATUS = Path("/proc/self/status")


def memory_kib(field: str) -> int:
    line = next(line for line in STATUS.read_text().splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1])


def reset_peak_memory() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux 4.0+)


@pytest.mark.slow
def test_peak_memory_stays_within_the_budget_under_maximum_size_uploads(start_server: Callable) -> None:
    """The server runs in this process (a real uvicorn on loopback), so its peak is this process's."""
    flat = encode(Image.new("L", (SIDE, SIDE), 128))
    settings = {"memory_budget_mb": BUDGET_MB, "max_pixels": SIDE * SIDE, "max_upload_mb": 1, "max_batch_files": FILES_PER_BATCH}
    with start_server(**settings) as live:

        def single(_: int) -> int:
            with live.client() as client:
                return client.post("/colorize", files={"file": ("flat.png", flat, "image/png")}).status_code

        def batch(_: int) -> int:
            files = [("files", (f"{i}.png", flat, "image/png")) for i in range(FILES_PER_BATCH)]
            with live.client() as client:
                return client.post("/colorize/batch", files=files).status_code

        reset_peak_memory()
        before_kib = memory_kib("VmRSS")
        with ThreadPoolExecutor(max_workers=SINGLE_UPLOADS + BATCHES) as pool:
            singles = pool.map(single, range(SINGLE_UPLOADS))
            batches = pool.map(batch, range(BATCHES))
            statuses = [*singles, *batches]
        peak_kib = memory_kib("VmHWM")

    assert set(statuses) <= {200, 413, 503}, statuses
    assert 200 in statuses
    grown_mb = (peak_kib - before_kib) * 1024 / BYTES_PER_MB
    assert grown_mb <= BUDGET_MB + ALLOWANCE_MB, f"peak grew {grown_mb:.0f} MiB; statuses {statuses}"
