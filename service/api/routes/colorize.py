"""Colorize one photo, or several in one request."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query, UploadFile
from fastapi.responses import Response

from service.api.deps import ColorizerDep, SettingsDep
from service.api.errors import ApiError, error_responses
from service.archive import build_archive
from service.pipeline import MEDIA_TYPES
from service.serving import Colorized, Upload

router = APIRouter(tags=["colorize"])

OutputFormat = Literal["png", "jpeg", "webp"]
FormatQuery = Annotated[OutputFormat, Query(alias="format", description="How the answer is encoded.")]
FAILURES = error_responses(400, 413, 415, 422, 500, 503)
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
async def colorize(file: UploadFile, colorizer: ColorizerDep, output_format: FormatQuery = "png") -> Response:
    """Colorize one photo (PNG, JPEG, WebP, BMP or TIFF); the answer has the photo's pixel size."""
    result = await colorizer.colorize(await file.read(), output_format)
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
    files: list[UploadFile], colorizer: ColorizerDep, settings: SettingsDep, output_format: FormatQuery = "png"
) -> Response:
    """Colorize several photos; a bad one gets `<name>.error.json` in the zip and the rest still succeed."""
    if len(files) > settings.max_batch_files:
        raise ApiError(413, "too_many_files", f"{len(files)} files sent; the limit is {settings.max_batch_files}.")
    uploads = [Upload(file.filename, await file.read()) for file in files]
    results = await colorizer.colorize_many(uploads, output_format)
    archive = await anyio.to_thread.run_sync(build_archive, uploads, results, output_format)
    headers = {"Content-Disposition": 'attachment; filename="colorized.zip"'}
    return Response(archive, media_type="application/zip", headers=headers)


def _headers(result: Colorized) -> dict[str, str]:
    headers = {VERSION_HEADER: str(result.model_version)}
    if result.notes:
        headers[NOTE_HEADER] = "; ".join(result.notes)
    return headers
