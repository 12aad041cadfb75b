"""The memory budget: one admission control over the memory that requests in flight hold.

Every request gets a ``Claim`` on a shared ``MemoryBudget`` (the ``MemoryAdmission`` middleware
makes it and releases it once the answer is sent). A claim takes shares as the request goes:

- its body, before any of it is read (``body_cost``: the multipart spool and the bytes read from it);
- each photo, before it is decoded (``photo_cost``: its peak from decode to encoded answer), kept
  after encoding only for the encoded bytes (``Share.settle``), which wait in the answer;
- a batch's zip, before it is built.

A share that does not fit is refused at once with ``OverBudget`` (503, come back later), or with
``NeverFits`` (413) when it is larger than the whole budget. One exception keeps batches moving
without deadlock: a claim that still has a photo in progress waits for it to finish instead, since
that photo frees memory without needing any more.

Everything here runs on the event loop; nothing needs a lock.
"""

from __future__ import annotations

import asyncio

from colorizer_core.contract import HINT_CHANNELS

# A photo's peak, per pixel of the upload, from decode to encoded answer. Decoding a 16-bit or
# float image is the worst case (its float64 rescale); 8-bit photos take less than half of this.
# The chroma merge adds about 16 bytes a pixel: its uint8 planes, and at worst an index per pixel to redo
# (it redoes them imaging.CHROMA_STRIP_PIXELS at a time).
PEAK_BYTES_PER_PIXEL = 32
# Per pixel of the model's input (render size squared): gray, hint map and RGB output as float32,
# each once for the job and once more stacked into its batch.
MODEL_BYTES_PER_RENDER_PIXEL = 2 * 4 * (1 + HINT_CHANNELS + 3)
# A multipart body is held twice: Starlette's spool of each file, and the bytes read from it.
BODY_COPIES = 2
# A zip is built in a buffer and copied out of it once.
ARCHIVE_COPIES = 2


class OverBudget(Exception):
    """Requests in flight hold too much memory to admit this one now; the caller should come back later."""


class NeverFits(Exception):
    """This needs more memory than the whole budget: no amount of waiting would admit it."""


def photo_cost(pixels: int, render_size: int) -> int:
    """Bytes one photo of ``pixels`` pixels, rendered at ``render_size``, holds at its peak."""
    return pixels * PEAK_BYTES_PER_PIXEL + render_size * render_size * MODEL_BYTES_PER_RENDER_PIXEL


def body_cost(body_bytes: int) -> int:
    return body_bytes * BODY_COPIES


class MemoryBudget:
    """The bytes that all claims together may hold."""

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes < 1:
            raise ValueError(f"limit_bytes must be at least 1. Received: limit_bytes={limit_bytes}")
        self.limit_bytes = limit_bytes
        self.used_bytes = 0
        self._freed = asyncio.Event()  # replaced by a fresh one each time memory is freed

    def claim(self) -> Claim:
        return Claim(self)

    def _admit(self, nbytes: int) -> bool:
        if self.used_bytes + nbytes > self.limit_bytes:
            return False
        self.used_bytes += nbytes
        return True

    def _free(self, nbytes: int) -> None:
        if nbytes:
            self.used_bytes -= nbytes
            self._freed.set()
            self._freed = asyncio.Event()


class Claim:
    """What one request holds of the budget. ``release`` gives all of it back."""

    def __init__(self, budget: MemoryBudget) -> None:
        self._budget = budget
        self._shares: list[Share] = []

    @property
    def held_bytes(self) -> int:
        return sum(share.nbytes for share in self._shares)

    async def take(self, nbytes: int, what: str) -> Share:
        """A share of ``nbytes`` for ``what`` (said in errors); see the module docstring for when it waits."""
        budget = self._budget
        if nbytes > budget.limit_bytes:
            raise NeverFits(
                f"{what} needs {_mib(nbytes)} MiB of memory; the service's whole budget is {_mib(budget.limit_bytes)} MiB."
            )
        while not budget._admit(nbytes):
            if not any(share.in_progress for share in self._shares):
                raise OverBudget(f"Requests in flight hold the service's memory budget; {what} needs {_mib(nbytes)} MiB.")
            await budget._freed.wait()
        share = Share(budget, nbytes)
        self._shares.append(share)
        return share

    def release(self) -> None:
        for share in self._shares:
            share.settle(0)
        self._shares.clear()


class Share:
    """Bytes taken for one thing; in progress until ``settle``."""

    def __init__(self, budget: MemoryBudget, nbytes: int) -> None:
        self._budget = budget
        self.nbytes = nbytes
        self.in_progress = True

    def settle(self, keep_bytes: int) -> None:
        """The work is done: keep only ``keep_bytes`` of the share (what it produced), free the rest."""
        keep_bytes = min(keep_bytes, self.nbytes)
        freed, self.nbytes, self.in_progress = self.nbytes - keep_bytes, keep_bytes, False
        self._budget._free(freed)


def _mib(nbytes: int) -> str:
    return f"{nbytes / (1024 * 1024):.0f}"
