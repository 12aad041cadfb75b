"""Interactive API docs that work offline: Swagger UI's files come from the ``swagger-ui-bundle`` package."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

router = APIRouter(tags=["docs"])

ASSETS_URL = "/docs-assets"  # mounted by create_app: ``assets()``


def assets() -> StaticFiles:
    """Swagger UI's JavaScript, CSS and icons, as installed with the service."""
    return StaticFiles(directory=str(swagger_ui_path))


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI for this service's OpenAPI schema, with nothing fetched from elsewhere."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
    )
