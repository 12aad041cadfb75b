#!/usr/bin/env bash
# Makes a local stand-in for the official debian:bookworm-slim image, for machines that reach
# Debian's package mirror but no image registry. The official image is built from this same
# `debootstrap --variant=minbase bookworm`, then slimmed (no docs, man pages or locales, dpkg told
# to leave them out of later installs too); this does the same and imports the tree as
# docker.io/library/debian:bookworm-slim, so `FROM debian:bookworm-slim` finds it without a pull.
#
#   bash docker/debian-base.sh [podman global flags...]      # does nothing if the image exists
# Needs root, debootstrap and podman (docker/podman-setup.sh installs them).
set -euo pipefail

IMAGE=docker.io/library/debian:bookworm-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
podman=(podman "$@")

if "${podman[@]}" image exists "$IMAGE"; then
    echo "$IMAGE: already here"
    exit 0
fi

root=$(mktemp -d /var/tmp/bookworm-slim.XXXXXX)
chmod 755 "$root"   # it becomes the image's /: mktemp made it 0700
trap 'rm -rf "$root"' EXIT
echo "debootstrap --variant=minbase bookworm from $MIRROR ..."
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || { tail -n 20 "$root.log"; exit 1; }
rm -f "$root.log"

# What debuerreotype's --slimify does for the official -slim images.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{groff,info,linda,lintian,locale,man}/*
cat >"$root/etc/apt/sources.list.d/debian.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
rm -f "$root/etc/apt/sources.list"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log

tar -C "$root" --numeric-owner -c . | "${podman[@]}" import --quiet \
    --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --message "debootstrap --variant=minbase bookworm, slimmed: a stand-in for $IMAGE" - "$IMAGE" >/dev/null
"${podman[@]}" image ls "$IMAGE"
