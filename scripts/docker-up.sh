#!/usr/bin/env bash
# What the Docker sandbox tests need: docker.io and debootstrap installed, a Docker engine
# answering, and the sandbox image built for this code with what the envs installed here need.
# Idempotent and quick when all is there. Without root and without an engine it does nothing;
# the docker tests then skip with a reason (in CI, where CI is set, they fail).
#   usage: scripts/docker-up.sh [PYTHON]      (PYTHON: the venv's python, for the image build)
set -u
python="${1:-.venv/bin/python}"
pidfile=/run/rewardsmith-dockerd.pid   # set when this script started the engine (docker-down.sh stops it)
log=/tmp/rewardsmith-dockerd.log

engine_answers() { docker info >/dev/null 2>&1; }

if ! engine_answers; then
  if [ "$(id -u)" != 0 ]; then
    echo "note: no Docker engine answers and we are not root: docker tests are skipped" >&2
    exit 0
  fi
  want=()
  command -v dockerd >/dev/null 2>&1 || want+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || want+=(debootstrap)
  if [ ${#want[@]} -gt 0 ]; then
    echo "installing ${want[*]} ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${want[@]}" >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${want[@]}" >/dev/null 2>&1
    } || { echo "note: could not install ${want[*]}: docker tests are skipped" >&2; exit 0; }
  fi
  # overlay2 where the kernel and filesystem allow it (fast container starts), else vfs (works
  # everywhere, copies the image per container). No bridge or iptables: sandboxes have no network.
  for driver in overlay2 vfs; do
    setsid dockerd --storage-driver="$driver" --iptables=false --bridge=none >"$log" 2>&1 < /dev/null &
    echo $! > "$pidfile"
    for _ in $(seq 1 60); do
      engine_answers && break
      kill -0 "$(cat "$pidfile")" 2>/dev/null || break
      sleep 0.5
    done
    engine_answers && { echo "dockerd started (storage driver $driver)" >&2; break; }
    kill "$(cat "$pidfile")" 2>/dev/null; wait "$(cat "$pidfile")" 2>/dev/null; rm -f "$pidfile"
  done
  engine_answers || { echo "note: dockerd did not start (see $log): docker tests are skipped" >&2; exit 0; }
fi
# `sandbox build` says "up to date" quickly when the image of this code carries everything
start=$(date +%s)
if image="$("$python" -m rewardsmith sandbox build 2>"$log.build")"; then
  echo "sandbox image $image ($(( $(date +%s) - start )) s)" >&2
else
  tail -n 20 "$log.build" >&2
  echo "error: the sandbox image build failed (see above): the docker tests cannot run" >&2
fi
exit 0
