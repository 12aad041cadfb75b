"""Waiting for something that happens elsewhere (a server, a queue, a training process) to come true."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_INTERVAL_S = 0.05


def wait_until(condition: Callable[[], object], what: str, timeout_s: float) -> None:
    """Poll ``condition`` until it is true; ``TimeoutError`` naming ``what`` once ``timeout_s`` have passed.

    An exception that ``condition`` raises (say, an assertion that a process is still alive) ends the wait.
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout_s:g} s")
        time.sleep(POLL_INTERVAL_S)
