"""Colorize uploads: the one path every HTTP request takes, single file or batch.

size (thread) -> a share of the memory budget -> decode + model inputs (codec thread) -> batching
queue (the inference worker) -> chroma onto the photo + encode (codec thread). The event loop only
awaits; it never decodes, encodes or runs the model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import numpy as np
from PIL import Image

from colorizer_core import imaging
from colorizer_core.hints import Hint
from colorizer_core.imaging import ColorizeOptions
from colorizer_core.inference import LoadedModel
from colorizer_service.batching import BatchingQueue, InferenceFailed, QueueClosed, QueueFull
from colorizer_service.budget import Claim, NeverFits, OverBudget, photo_cost
from colorizer_service.live_model import LiveModel, ModelNotReady

log = logging.getLogger(__name__)

FIRST_FRAME_NOTE = "animated image: only the first frame was colorized"
# A model may leave a photo gray where it is unsure of its colours (a chroma gain per photo, trainer/photo_gain.py).
LEFT_GRAY_NOTE = "the model was unsure of this photo's colours and left it gray; a few colour hints steer it"
GRAY_TOLERANCE = 1 / 255  # channels closer than one 8-bit level everywhere: no colour was added
# Failures of the service, not of one file: a batch meeting one is answered 503 as a whole, to retry.
CAPACITY_ERRORS = (QueueFull, OverBudget, ModelNotReady, QueueClosed)


@dataclass(frozen=True)
class Colorized:
    """One colorized upload, encoded."""

    content: bytes
    media_type: str
    model_version: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


@dataclass(frozen=True)
class FileError:
    """Why one file of a batch has no result: ``kind`` for programs, ``message`` for people."""

    kind: str
    message: str


class Colorizer:
    """Turns uploaded bytes into colorized, encoded images through the batching queue."""

    def __init__(
        self,
        live_model: LiveModel,
        queue: BatchingQueue,
        *,
        max_pixels: int,
        max_render_size: int,
        codec_threads: int = 1,
        png_compress_level: int = imaging.DEFAULT_PNG_COMPRESS_LEVEL,
    ) -> None:
        self.live_model = live_model
        self.queue = queue
        self.max_pixels = max_pixels
        self.max_render_size = max_render_size
        self.png_compress_level = png_compress_level
        # Decoding, the colour merge and encoding run in threads: Pillow, OpenCV, numpy and ISA-L release
        # the GIL, so they use that many cores at once; requests beyond it wait their turn.
        self.codec_limiter = anyio.CapacityLimiter(codec_threads)

    async def colorize(
        self, data: bytes, fmt: str, claim: Claim, options: ColorizeOptions = ColorizeOptions()
    ) -> Colorized:
        """Colorize one upload, holding its memory as a share of ``claim``.

        Raises ``BadImage``, ``BadOptions``, ``QueueFull``, ``OverBudget``, ``NeverFits``,
        ``ModelNotReady`` or ``InferenceFailed``.
        """
        if self.queue.full:  # refuse before spending a thread on decoding
            raise QueueFull(f"{self.queue.depth} images are already waiting for the model.")
        model = self.live_model.current  # pinned: a reload from here on does not affect this request
        size = model.render_size(options.render_size, largest=self.max_render_size)
        hints = _hints_for(model, options.hints)
        header = await anyio.to_thread.run_sync(_read_header, data, self.max_pixels)
        share = await claim.take(photo_cost(header.pixels, size), "this photo")
        content = b""
        try:
            with self.queue.arriving():  # so a batch forming meanwhile waits for this image
                gray, inputs = await anyio.to_thread.run_sync(self._prepare, data, size, hints, limiter=self.codec_limiter)
                result = self.queue.submit(model, *inputs)
            rgb = await asyncio.wrap_future(result)  # cancelling this wait drops the job
            content, left_gray = await anyio.to_thread.run_sync(
                self._finish, gray, rgb, fmt, options.saturation, limiter=self.codec_limiter
            )
        finally:
            share.settle(len(content))  # the answer's bytes stay held until it is sent
        notes = (FIRST_FRAME_NOTE,) if header.animated else ()
        if left_gray:
            notes += (LEFT_GRAY_NOTE,)
        return Colorized(content, imaging.MEDIA_TYPES[fmt], model.version, notes)

    async def colorize_many(
        self, uploads: Sequence[Upload], fmt: str, claim: Claim, options: ColorizeOptions = ColorizeOptions()
    ) -> list[Colorized | FileError]:
        """Colorize several uploads together (so they share batches); any failure of one file is its ``FileError``.

        Options no photo can take (``BadOptions``) and the service's capacity errors (``CAPACITY_ERRORS``)
        fail the whole call.
        """
        self.live_model.current.render_size(options.render_size, largest=self.max_render_size)  # bad for all
        # At most a model batch's worth of this call's images is in flight at once, so one big
        # request cannot fill the queue by itself.
        in_queue = asyncio.Semaphore(min(self.queue.max_batch, self.queue.max_size))

        async def one(upload: Upload) -> Colorized | FileError:
            async with in_queue:
                try:
                    return await self.colorize(upload.data, fmt, claim, options)
                except CAPACITY_ERRORS:
                    raise
                except (imaging.BadImage, imaging.BadOptions) as error:
                    return FileError(error.kind, error.message)
                except NeverFits as error:
                    return FileError("too_large_for_memory", str(error))
                except InferenceFailed as error:
                    return FileError("inference_failed", str(error))
                except Exception:
                    log.exception("Colorizing %r failed", upload.filename)
                    return FileError("internal_error", "An unexpected error with this file; the service logged it.")

        tasks = [asyncio.ensure_future(one(upload)) for upload in uploads]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:  # their jobs leave the queue unrun
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # and their shares are settled
            raise

    def _prepare(
        self, data: bytes, size: int, hints: tuple[Hint, ...] | None
    ) -> tuple[Image.Image, tuple[np.ndarray, ...]]:
        """The photo and the model's inputs for it (gray; hint map when ``hints`` is not None)."""
        gray = imaging.decode_image(data, max_pixels=self.max_pixels)
        inputs = (imaging.model_input(gray, size),)
        if hints is not None:
            inputs += (imaging.hint_map(hints, gray.size, size),)
        return gray, inputs

    def _finish(self, gray: Image.Image, rgb: np.ndarray, fmt: str, saturation: float) -> tuple[bytes, bool]:
        """The answer's bytes, and whether the model left the photo gray (read here, off the event loop)."""
        colour = imaging.apply_chroma(gray, rgb, saturation)
        return imaging.encode_image(colour, fmt, png_compress_level=self.png_compress_level), _left_gray(rgb)


def _left_gray(rgb: np.ndarray) -> bool:
    """The model's answer ``(H, W, 3)`` in [0, 1] holds no colour: its channels agree at every pixel."""
    return float(np.ptp(rgb, axis=-1).max(initial=0.0)) < GRAY_TOLERANCE


def _hints_for(model: LoadedModel, hints: tuple[Hint, ...]) -> tuple[Hint, ...] | None:
    """The hints to paint for ``model``: all of them (maybe none) if it takes hints, else ``None``.

    Raises ``BadOptions`` for hints sent to a model that takes none.
    """
    if model.takes_hints:
        return hints
    if hints:
        raise imaging.BadOptions(
            "hints_unsupported",
            f"Model version {model.version} takes no colour hints; send the photo without them.",
        )
    return None


@dataclass(frozen=True)
class Header:
    """What an upload's header says, read before decoding it."""

    pixels: int  # to budget for; 0 where decoding will refuse it before allocating (not an image, too large)
    animated: bool  # more than one frame (GIF, APNG, WebP, multi-page TIFF): only the first is colorized


def _read_header(data: bytes, max_pixels: int) -> Header:
    try:
        with imaging.open_image(data, max_pixels=max_pixels) as image:
            return Header(image.width * image.height, _is_animated(image))
    except imaging.BadImage:
        return Header(0, False)


def _is_animated(image: Image.Image) -> bool:
    """A camera's MPO JPEG also has several frames, but they are previews of one photo: not animation.
    Counting frames reads past the first; where those bytes are corrupt, the answer is no."""
    try:
        return image.format != "MPO" and bool(getattr(image, "is_animated", False))
    except Exception:
        return False
