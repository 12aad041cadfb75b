"""Fixtures for the service tests: a real uvicorn on loopback, serving a tiny model made here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_testing import MODEL_SIZE, WARM, LiveServer, live_server, make_model_dir, server_settings


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the whole session, serving the WARM model as version 1. Tests must not change its model."""
    version_dir = make_model_dir(tmp_path_factory.mktemp("session"), tint=WARM, size=MODEL_SIZE)
    with live_server(server_settings(version_dir.parent), version_dir.parent) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="session")
def hints_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the session whose model takes hints: the hint's colour under its mask, gray elsewhere."""
    version_dir = make_model_dir(tmp_path_factory.mktemp("hints"), hints=True, size=MODEL_SIZE)
    with live_server(server_settings(version_dir.parent), version_dir.parent) as live:
        yield live


@pytest.fixture
def hints_client(hints_server: LiveServer) -> Iterator[httpx.Client]:
    with hints_server.client() as client:
        yield client


@pytest.fixture
def start_server(tmp_path: Path) -> Callable[..., Any]:
    """A factory for a server of its own (for tests that change the model): ``with start_server(...) as live``.

    ``model_options`` go to ``make_model_dir``; the other keywords override settings.
    """

    def start(
        *,
        versions: tuple[int, ...] = (1,),
        wait_until_ready: bool = True,
        model_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> Any:
        for version in versions:
            make_model_dir(tmp_path, version=version, tint=WARM, size=MODEL_SIZE, **(model_options or {}))
        model_root = tmp_path / "models" / "colorizer"
        model_root.mkdir(parents=True, exist_ok=True)
        return live_server(server_settings(model_root, **overrides), model_root, wait_until_ready=wait_until_ready)

    return start
