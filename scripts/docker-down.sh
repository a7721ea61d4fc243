#!/usr/bin/env bash
# Stop the Docker engine if scripts/docker-up.sh started it (an engine started otherwise stays).
set -u
pidfile=/run/rewardsmith-dockerd.pid
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
kill "$pid" 2>/dev/null
for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
rm -f "$pidfile"
exit 0
