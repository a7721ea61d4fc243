#!/usr/bin/env bash
# Debian packages, installed when missing and when we are root (otherwise what needs them is
# skipped with a reason):
#   system-deps.sh runtime   what `rewardsmith solve` uses: bubblewrap (the default sandbox)
#   system-deps.sh test      also what the tests use: tmux (a real terminal for the ranking app),
#                            chromium (renders the HTML report), OSMesa (MuJoCo frames off-screen)
set -u
want=()
command -v bwrap >/dev/null 2>&1 || want+=(bubblewrap)
if [ "${1:-runtime}" = test ]; then
  command -v tmux >/dev/null 2>&1 || want+=(tmux)
  command -v chromium >/dev/null 2>&1 || want+=(chromium)
  ldconfig -p 2>/dev/null | grep -q 'libOSMesa\.so' || want+=(libosmesa6)
fi
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: not installing ${want[*]} (needs root and apt-get); what needs them is skipped" >&2
  exit 0
fi
echo "installing ${want[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "${want[@]}" >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${want[@]}" >/dev/null 2>&1
} || echo "note: could not install ${want[*]}; what needs them is skipped" >&2
exit 0
