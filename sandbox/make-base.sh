#!/usr/bin/env bash
# Build the sandbox's base image without a registry: a minimal Debian bookworm with Python 3.11,
# made by debootstrap and loaded with `docker import`. Used when `docker pull` cannot reach a
# registry (as on machines that only reach package mirrors). Needs root and debootstrap.
#   usage: sandbox/make-base.sh [IMAGE]        (default rewardsmith-base:bookworm)
set -euo pipefail
image="${1:-rewardsmith-base:bookworm}"
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image is already there"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "error: building $image with debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "error: debootstrap is not installed" >&2; exit 1; }
# The mirror apt already uses here, so this works wherever `apt-get install` does.
mirror="$(grep -rhoE 'https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
          | grep -v security | head -n1 || true)"
[ -n "$mirror" ] || { echo "error: no Debian mirror found in /etc/apt/sources.list*" >&2; exit 1; }
root="$(mktemp -d /var/tmp/rewardsmith-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm (minbase + python3) from $mirror ..."
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$root" "$mirror" \
  > "$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# Smaller image: no package cache, docs or translations.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
echo "docker import -> $image ..."
tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "base image $image is ready"
