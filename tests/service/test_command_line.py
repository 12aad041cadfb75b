"""The command lines: offline ``colorize`` gives the service's pixels; ``colorize-serve`` starts the service."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from ports import free_port
from service_testing import LiveServer, encode, photo
from waiting import wait_until

from colorizer_service.cli import colorize

STARTUP_TIMEOUT_S = 300.0  # a probe and a warm-up on a loaded 2-core machine


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


def test_offline_colorize_follows_hints_saturation_and_render_size_as_the_service_does(
    hints_server: LiveServer, hints_client: httpx.Client, tmp_path: Path
) -> None:
    source = tmp_path / "gray.png"
    Image.new("L", (64, 48), 128).save(source)
    flags = ["--hint", "16,12,#00c000", "--hint", "50,30,#d00000", "--saturation", "1.5", "--render-size", "48"]
    assert run_colorize(source, "--out", tmp_path / "out", "--model-dir", hints_server.model_root, *flags) == 0
    with Image.open(tmp_path / "out" / "gray.png") as offline:
        pixels = np.asarray(offline.convert("RGB"), np.int16)
    red, green, blue = pixels[12, 16]
    assert green - max(red, blue) > 100

    hints = '[{"x": 16, "y": 12, "color": "#00c000"}, {"x": 50, "y": 30, "color": "#d00000"}]'
    served = hints_client.post(
        "/colorize",
        files={"file": ("gray.png", source.read_bytes(), "image/png")},
        data={"hints": hints},
        params={"saturation": 1.5, "render_size": 48},
    )
    assert np.array_equal(pixels, np.asarray(Image.open(io.BytesIO(served.content)).convert("RGB"), np.int16))


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--hint", "16,12"], "X,Y,#RRGGBB"),
        (["--hint", "16,12,green"], "hint.color"),
        (["--hint=-1,12,#00ff00"], "hint.x"),
        (["--saturation", "2.5"], "--saturation"),
        (["--render-size", "8"], "--render-size"),
    ],
)
def test_offline_colorize_refuses_bad_hint_saturation_or_render_size_flags(
    hints_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], says: str
) -> None:
    photo().save(tmp_path / "photo.png")
    out = tmp_path / "out"
    assert run_colorize(tmp_path / "photo.png", "--out", out, "--model-dir", hints_server.model_root, *flags) == 2
    assert says in capsys.readouterr().err
    assert not out.exists()


def test_offline_colorize_refuses_hints_for_a_model_that_takes_none(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo().save(tmp_path / "photo.png")
    flags = ["--model-dir", server.model_root, "--hint", "1,1,#00ff00"]
    assert run_colorize(tmp_path / "photo.png", "--out", tmp_path / "out", *flags) == 2
    assert "takes no colour hints" in capsys.readouterr().err


def test_offline_colorize_skips_a_photo_that_a_hint_falls_outside(hints_server: LiveServer, tmp_path: Path) -> None:
    photo(64, 48).save(tmp_path / "large.png")
    photo(20, 20).save(tmp_path / "small.png")
    sources = [tmp_path / "large.png", tmp_path / "small.png"]
    flags = ["--model-dir", hints_server.model_root, "--hint", "30,30,#00ff00"]
    assert run_colorize(*sources, "--out", tmp_path / "out", *flags) == 1
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["large.png"]


def is_ready(process: subprocess.Popen, port: int) -> bool:
    """Whether the service on ``port`` says it is ready; fails the test if its process has exited."""
    assert process.poll() is None, process.stderr.read().decode(errors="replace")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


@pytest.mark.parametrize("launcher", ["colorize-serve", "uvicorn"])
def test_service_starts_from_the_command_line_and_gets_ready(server: LiveServer, launcher: str) -> None:
    port = free_port()
    env = os.environ | {"COLORIZER_MODEL_DIR": str(server.model_root), "COLORIZER_PORT": str(port)}
    commands = {
        "colorize-serve": [str(Path(sys.executable).parent / "colorize-serve")],
        "uvicorn": [sys.executable, "-m", "uvicorn", "colorizer_service.app:app", "--port", str(port)],
    }
    process = subprocess.Popen(commands[launcher], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: is_ready(process, port), "the service to become ready", STARTUP_TIMEOUT_S)
        upload = {"file": ("p.png", encode(photo()), "image/png")}
        assert httpx.post(f"http://127.0.0.1:{port}/colorize", files=upload).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        process.stderr.close()


def test_offline_colorize_says_where_the_model_runs_and_hides_tensorflows_start_up_lines(
    server: LiveServer, tmp_path: Path
) -> None:
    source = tmp_path / "photo.png"
    photo().save(source)
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    command = [str(Path(sys.executable).parent / "colorize"), str(source), "--out", str(tmp_path / "out")]
    finished = subprocess.run(command + ["--model-dir", str(server.model_root)], env=env, capture_output=True, text=True)

    assert finished.returncode == 0, finished.stderr
    assert "runs on CPU" in finished.stderr or "runs on GPU" in finished.stderr
    for chatter in ("cuInit", "oneDNN", "cpu_feature_guard", "cudart_stub", "absl::InitializeLog"):
        assert chatter not in finished.stderr
