"""The HTTP API: routes grouped by resource, shared dependencies, error answers and middleware."""

from fastapi import APIRouter

from colorizer_service.api.routes import colorize, docs, health, model, page

api_router = APIRouter()
for routes in (colorize, docs, health, model, page):
    api_router.include_router(routes.router)

__all__ = ["api_router"]
