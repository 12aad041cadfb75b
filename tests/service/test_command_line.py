"""The command lines: offline ``colorize`` gives the service's pixels; ``colorize-serve`` starts the service."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from service_testing import LiveServer, encode, photo

from service.cli import colorize

STARTUP_TIMEOUT_S = 120.0


def run_colorize(*args: str | Path) -> int:
    with pytest.raises(SystemExit) as exit_info:
        colorize([str(arg) for arg in args])
    return exit_info.value.code


def test_offline_colorize_gives_the_same_pixels_as_the_service(
    server: LiveServer, client: httpx.Client, tmp_path: Path
) -> None:
    source = tmp_path / "photo.jpg"
    photo(37, 23).save(source)
    assert run_colorize(source, "--out", tmp_path / "out", "--model-dir", server.model_root) == 0

    served = client.post("/colorize", files={"file": ("photo.jpg", source.read_bytes(), "image/jpeg")})
    with Image.open(tmp_path / "out" / "photo.png") as offline:
        assert np.array_equal(np.asarray(offline), np.asarray(Image.open(io.BytesIO(served.content))))


def test_offline_colorize_walks_folders_and_keeps_their_structure(server: LiveServer, tmp_path: Path) -> None:
    album = tmp_path / "album"
    (album / "1950s").mkdir(parents=True)
    photo(30, 20).save(album / "front.png")
    photo(20, 30).save(album / "1950s" / "beach.tif")
    (album / "notes.txt").write_text("not a photo, and not picked up")
    out = tmp_path / "out"
    assert run_colorize(album, "--out", out, "--model-dir", server.model_root, "--format", "jpeg") == 0
    assert sorted(path.relative_to(out).as_posix() for path in out.rglob("*")) == [
        "1950s",
        "1950s/beach.jpeg",
        "front.jpeg",
    ]
    with Image.open(out / "1950s" / "beach.jpeg") as beach:
        assert beach.size == (20, 30)


def test_offline_colorize_skips_a_bad_file_finishes_the_rest_and_exits_1(server: LiveServer, tmp_path: Path) -> None:
    photo(30, 20).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"definitely not a png")
    out = tmp_path / "out"
    sources = [tmp_path / "good.png", tmp_path / "bad.png"]
    assert run_colorize(*sources, "--out", out, "--model-dir", server.model_root) == 1
    assert sorted(path.name for path in out.iterdir()) == ["good.png"]


def test_offline_colorize_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    photo().save(tmp_path / "photo.png")
    assert run_colorize(tmp_path / "photo.png", "--out", tmp_path) == 2  # argparse's usage error


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("launcher", ["colorize-serve", "uvicorn"])
def test_service_starts_from_the_command_line_and_gets_ready(server: LiveServer, launcher: str) -> None:
    port = free_port()
    env = os.environ | {"COLORIZER_MODEL_DIR": str(server.model_root), "COLORIZER_PORT": str(port)}
    commands = {
        "colorize-serve": [str(Path(sys.executable).parent / "colorize-serve")],
        "uvicorn": [sys.executable, "-m", "uvicorn", "service.app:app", "--port", str(port)],
    }
    process = subprocess.Popen(commands[launcher], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert process.poll() is None, process.stderr.read().decode(errors="replace")
            assert time.monotonic() < deadline, "the service never became ready"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        upload = {"file": ("p.png", encode(photo()), "image/png")}
        assert httpx.post(f"http://127.0.0.1:{port}/colorize", files=upload).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        process.stderr.close()
