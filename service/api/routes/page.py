"""The upload page: plain HTML and JS, no build step, nothing fetched from elsewhere."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["page"])

PAGE_FILE = Path(__file__).resolve().parents[2] / "static" / "index.html"

# The page's script and style are inline; images it shows are blob: URLs; it talks only to this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; base-uri 'none'"
)


@cache
def _page() -> str:
    return PAGE_FILE.read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    """Pick or drop a photo; see it before and after; download the result."""
    return HTMLResponse(_page(), headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})
