#!/usr/bin/env bash
# Idempotent: make sure a headless-capable Chromium is at /usr/bin/chromium (Debian's package) for
# the audit report's browser test and screenshot helper. Only reaches the network when it is
# missing; runs `apt-get update` only if the install fails without it (stale package lists).
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  "$CHROMIUM" --version
  exit 0
fi
SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup-chromium: need root or sudo for apt-get" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
install() { $SUDO apt-get install -y -q --no-install-recommends chromium; }
if ! install; then
  echo "setup-chromium: install failed; refreshing package lists and retrying" >&2
  $SUDO apt-get update -q
  install
fi
"$CHROMIUM" --version
