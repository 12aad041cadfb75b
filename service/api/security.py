"""The control plane's locks: an admin bearer token, and no requests a page on another site could send.

A browser sends ``Sec-Fetch-Site`` (and ``Origin`` on POSTs) with its requests; programs like curl send
neither. A request that a browser marks as coming from another site, or whose ``Origin`` is not this
service's own, is refused: a page elsewhere must not be able to reload the model through a visitor's
browser (or, for POSTs anywhere, spend this service's time: see ``CrossSiteGuard``).
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers

from colorizer_service.api.deps import SettingsDep
from colorizer_service.api.errors import ApiError

# Sec-Fetch-Site values of requests that no other site's page made: the page itself, or a person
# (typed URL, bookmark).
OWN_SITE_FETCHES = frozenset({"same-origin", "none"})

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
bearer = HTTPBearer(auto_error=False, description="COLORIZER_ADMIN_TOKEN")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def fetched_by_another_site(headers: Headers) -> bool:
    """A browser says another site's page sent this request."""
    site = headers.get("sec-fetch-site")
    return site is not None and site not in OWN_SITE_FETCHES


def from_another_origin(headers: Headers) -> bool:
    """The request's ``Origin`` (when it has one) is not the host it was sent to."""
    origin = headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc.lower() != headers.get("host", "").lower()


def _same_site_only(request: Request) -> None:
    if fetched_by_another_site(request.headers) or from_another_origin(request.headers):
        raise ApiError(403, "cross_site_request", "Control-plane requests from another site's page are refused.")


def _token_matches(settings: SettingsDep, credentials: BearerDep) -> None:
    assert settings.admin_token is not None
    expected = settings.admin_token.get_secret_value().encode()
    if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), expected):
        raise ApiError(401, "unauthorized", "Send the admin token as 'Authorization: Bearer <token>'.", BEARER_CHALLENGE)


def admin_only(request: Request, settings: SettingsDep, credentials: BearerDep) -> None:
    """For actions: the admin token is required, and without one configured the action is off."""
    _same_site_only(request)
    if settings.admin_token is None:
        raise ApiError(403, "admin_disabled", "The control plane is off: set COLORIZER_ADMIN_TOKEN to turn it on.")
    _token_matches(settings, credentials)


def admin_if_configured(request: Request, settings: SettingsDep, credentials: BearerDep) -> None:
    """For details: the admin token is required once one is configured; without one, they are open."""
    _same_site_only(request)
    if settings.admin_token is not None:
        _token_matches(settings, credentials)


AdminOnly = Depends(admin_only)
AdminIfConfigured = Depends(admin_if_configured)
