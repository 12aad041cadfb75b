"""Colorize one photo, or several in one request."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import Response

from colorizer_core.hints import MAX_HINTS, Hint, InvalidHints, parse_hints
from colorizer_core.imaging import MAX_SATURATION, MEDIA_TYPES, MIN_RENDER_SIZE, ColorizeOptions, OutputFormat
from colorizer_service.api.deps import ColorizerDep, MemoryClaimDep, SettingsDep
from colorizer_service.api.errors import ApiError, error_responses
from colorizer_service.api.lifetime import for_client
from colorizer_service.archive import build_archive
from colorizer_service.budget import ARCHIVE_COPIES
from colorizer_service.colorizer import Colorized, Upload

router = APIRouter(tags=["colorize"])

FormatQuery = Annotated[OutputFormat, Query(alias="format", description="How the answer is encoded.")]
SaturationQuery = Annotated[
    float, Query(ge=0, le=MAX_SATURATION, description="Scales the predicted colour: 0 gray, 1 as predicted.")
]
RenderSizeQuery = Annotated[
    int | None,
    Query(
        description=f"The side in pixels at which the model sees the photo (at least {MIN_RENDER_SIZE}; the most "
        "is COLORIZER_MAX_RENDER_SIZE), rounded to the model's size_multiple; only the native size for "
        "models without accepts_other_sizes. Default: the model's native size."
    ),
]
HintsForm = Annotated[
    str | None,
    Form(
        description=f'A JSON array of at most {MAX_HINTS} colour hints, [{{"x": 12, "y": 30, "color": "#3a7bd5"}}]: '
        "x and y in pixels of the uploaded photo (origin top-left, after EXIF rotation). Only for models "
        'whose colorizer.json says "hints": true.'
    ),
]
FAILURES = error_responses(400, 403, 413, 415, 422, 500, 503)
NOTE_HEADER = "X-Colorizer-Note"
VERSION_HEADER = "X-Colorizer-Model-Version"


@router.post(
    "/colorize",
    response_class=Response,
    responses={
        200: {"content": {media: {} for media in MEDIA_TYPES.values()}, "description": "The colour image."},
        **FAILURES,
    },
)
async def colorize(
    request: Request,
    file: UploadFile,
    colorizer: ColorizerDep,
    settings: SettingsDep,
    claim: MemoryClaimDep,
    hints: HintsForm = None,
    output_format: FormatQuery = "png",
    saturation: SaturationQuery = 1.0,
    render_size: RenderSizeQuery = None,
) -> Response:
    """Colorize one photo (PNG, JPEG, WebP, BMP, TIFF or GIF); the answer has the photo's pixel size."""
    options = ColorizeOptions(_hints(hints), saturation, render_size)
    work = colorizer.colorize(await file.read(), output_format, claim, options)
    result = await for_client(request, work, timeout_s=settings.job_timeout_s)
    return Response(result.content, media_type=result.media_type, headers=_headers(result))


@router.post(
    "/colorize/batch",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "One result per upload, and manifest.json."},
        **FAILURES,
    },
)
async def colorize_batch(
    request: Request,
    files: list[UploadFile],
    colorizer: ColorizerDep,
    settings: SettingsDep,
    claim: MemoryClaimDep,
    output_format: FormatQuery = "png",
    saturation: SaturationQuery = 1.0,
    render_size: RenderSizeQuery = None,
) -> Response:
    """Colorize several photos; a file that fails gets `<name>.error.json` in the zip and the rest still succeed."""
    if len(files) > settings.max_batch_files:
        raise ApiError(413, "too_many_files", f"{len(files)} files sent; the limit is {settings.max_batch_files}.")
    uploads = [Upload(file.filename, await file.read()) for file in files]
    options = ColorizeOptions(saturation=saturation, render_size=render_size)
    work = colorizer.colorize_many(uploads, output_format, claim, options)
    results = await for_client(request, work, timeout_s=settings.job_timeout_s)
    results_bytes = sum(len(result.content) for result in results if isinstance(result, Colorized))
    zip_share = await claim.take(ARCHIVE_COPIES * results_bytes, "this batch's zip")
    zip_share.settle(zip_share.nbytes)  # held until the answer is sent
    archive = await anyio.to_thread.run_sync(build_archive, uploads, results, output_format)
    headers = {"Content-Disposition": 'attachment; filename="colorized.zip"'}
    return Response(archive, media_type="application/zip", headers=headers)


def _hints(field: str | None) -> tuple[Hint, ...]:
    """The ``hints`` form field, parsed; a malformed one is a 422 ``invalid_hints``."""
    if field is None:
        return ()
    try:
        return parse_hints(field)
    except InvalidHints as error:
        raise ApiError(422, "invalid_hints", str(error)) from None


def _headers(result: Colorized) -> dict[str, str]:
    headers = {VERSION_HEADER: str(result.model_version)}
    if result.notes:
        headers[NOTE_HEADER] = "; ".join(result.notes)
    return headers
