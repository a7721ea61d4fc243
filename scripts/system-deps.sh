#!/usr/bin/env bash
# Debian packages the tests use, installed when missing and when we are root; otherwise the
# tests that need them are skipped with a reason.
set -u
want=()
command -v bwrap >/dev/null 2>&1 || want+=(bubblewrap)
command -v tmux >/dev/null 2>&1 || want+=(tmux)
command -v chromium >/dev/null 2>&1 || want+=(chromium)   # renders the HTML report in a test
# off-screen OpenGL for MuJoCo frames (MUJOCO_GL=osmesa) in rollout videos
ldconfig -p 2>/dev/null | grep -q 'libOSMesa\.so' || want+=(libosmesa6)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: not installing ${want[*]} (needs root and apt-get); tests that need them are skipped" >&2
  exit 0
fi
echo "installing ${want[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "${want[@]}" >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${want[@]}" >/dev/null 2>&1
} || echo "note: could not install ${want[*]}; tests that need them are skipped" >&2
exit 0
