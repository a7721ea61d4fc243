#!/usr/bin/env bash
# Build the sandbox's base image without a registry: a minimal Debian bookworm with Python 3.11
# and the system libraries the envs load (OSMesa for MuJoCo's off-screen frames), made by
# debootstrap and loaded with `docker import`. Used when `docker pull` cannot reach a registry
# (as on machines that only reach package mirrors). Needs root and debootstrap.
#   usage: sandbox/make-base.sh IMAGE MIRROR [PACKAGE...]
#   IMAGE   the tag to create, e.g. rewardsmith-base:bookworm
#   MIRROR  a Debian mirror, e.g. http://deb.debian.org/debian (`rewardsmith sandbox build`
#           passes the one apt uses here, read from /etc/apt/sources.list*)
#   PACKAGE Debian packages to add to python3 and python3-venv
set -euo pipefail
image="${1:?usage: make-base.sh IMAGE MIRROR [PACKAGE...]}"
mirror="${2:?usage: make-base.sh IMAGE MIRROR [PACKAGE...]}"
shift 2
packages="python3,python3-venv"
for p in "$@"; do packages="$packages,$p"; done
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image is already there"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "error: building $image with debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "error: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
root="$(mktemp -d /var/tmp/rewardsmith-base.XXXXXX)"
trap 'rm -rf "$root" "$root.log"' EXIT
echo "debootstrap bookworm (minbase + $packages) from $mirror ..."
if ! debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" > "$root.log" 2>&1; then
  tail -n 20 "$root.log" >&2
  grep -h '^E:' "$root.log" "$root/debootstrap/debootstrap.log" 2>/dev/null | tail -n 3 >&2 || true
  echo "error: debootstrap from $mirror failed" >&2
  exit 1
fi
# Smaller image: no package cache, docs or translations.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
echo "docker import -> $image ..."
tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "base image $image is ready"
