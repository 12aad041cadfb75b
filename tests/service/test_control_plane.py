"""The control plane: reload and model details behind an admin token, never from another site's page."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx
import pytest
from pydantic import ValidationError
from service_testing import ADMIN_TOKEN, WARM, LiveServer, encode, photo

from colorizer_core import contract
from colorizer_service.settings import ADMIN_TOKEN_MIN_CHARS, Settings

ABSOLUTE_PATH = re.compile(r'"(/|[A-Za-z]:\\\\)[^"]*"')  # a JSON string that is an absolute path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, kind: str) -> None:
    assert (response.status_code, response.json()["error"]) == (status, kind), response.text


def test_a_short_admin_token_is_refused_at_start() -> None:
    with pytest.raises(ValidationError):
        Settings(admin_token="x" * (ADMIN_TOKEN_MIN_CHARS - 1))


@pytest.mark.parametrize("headers", [{}, bearer("wrong-" + ADMIN_TOKEN)], ids=["no-token", "wrong-token"])
def test_reload_and_model_details_need_the_admin_token(server: LiveServer, headers: dict[str, str]) -> None:
    with server.client(headers=headers) as client:
        response = client.post("/v1/model/reload")
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert_error(client.get("/v1/model"), 401, "unauthorized")


def test_the_admin_token_opens_the_control_plane(server: LiveServer) -> None:
    with server.admin_client() as client:
        assert client.post("/v1/model/reload").json()["version"] == 1
        assert client.get("/v1/model").json()["version"] == 1


def test_without_an_admin_token_reload_is_off_and_details_are_open(start_server: Callable) -> None:
    with start_server(admin_token=None) as live, live.client() as client:
        assert_error(client.post("/v1/model/reload", headers=bearer(ADMIN_TOKEN)), 403, "admin_disabled")
        assert client.get("/v1/model").json()["version"] == 1


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "https://evil.example"}, {"Origin": "null"}],
    ids=["cross-site", "same-site", "other-origin", "opaque-origin"],
)
def test_control_plane_refuses_requests_from_another_sites_page(server: LiveServer, headers: dict[str, str]) -> None:
    with server.admin_client() as client:
        assert_error(client.post("/v1/model/reload", headers=headers), 403, "cross_site_request")
        assert_error(client.get("/v1/model", headers=headers), 403, "cross_site_request")


def test_control_plane_accepts_the_services_own_page(server: LiveServer) -> None:
    own = {"Sec-Fetch-Site": "same-origin", "Origin": server.url}
    with server.admin_client() as client:
        assert client.post("/v1/model/reload", headers=own).status_code == 200


def test_uploads_from_another_sites_page_are_refused(client: httpx.Client) -> None:
    upload = {"file": ("p.png", encode(photo()), "image/png")}
    assert_error(client.post("/colorize", files=upload, headers={"Sec-Fetch-Site": "cross-site"}), 403, "cross_site_request")
    assert client.post("/colorize", files=upload, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_metrics_stay_open_without_the_token(client: httpx.Client) -> None:
    assert client.get("/metrics").status_code == 200


def test_model_details_and_skipped_versions_show_no_absolute_path(start_server: Callable) -> None:
    with start_server() as live, live.admin_client() as client:
        paths = {"data": "/home/someone/photos", "run_dir": "C:\\runs\\unet"}
        with_paths = live.write_version(2, WARM) / contract.METADATA_FILE
        with_paths.write_text(json.dumps(json.loads(with_paths.read_text()) | {"train": paths}))
        broken = live.write_version(3, WARM)
        (broken / contract.SAVED_MODEL_FILE).write_bytes(b"not a protocol buffer")
        client.post("/v1/model/reload")
        info = client.get("/v1/model")
    assert info.json()["version"] == 2
    assert info.json()["metadata"]["train"] == {"data": ".../photos", "run_dir": ".../unet"}
    assert [entry["version"] for entry in info.json()["skipped"]] == [3]
    assert str(live.model_root) not in info.text
    assert not ABSOLUTE_PATH.search(info.text), info.text
