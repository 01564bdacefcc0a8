#!/usr/bin/env bash
# Installs everything kubecache's tests and demo need on a fresh Debian machine.
# Idempotent: what is already there is not installed again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

missing_debs=""
command -v redis-server >/dev/null || missing_debs="$missing_debs redis-server"
command -v redis-sentinel >/dev/null || missing_debs="$missing_debs redis-sentinel"  # Sentinel tests
# Debian's Chromium drives the browser tests (Playwright never downloads a browser here).
[ -n "${KUBECACHE_NO_BROWSER:-}" ] || [ -x /usr/bin/chromium ] || missing_debs="$missing_debs chromium"
if [ -n "$missing_debs" ]; then
  echo "==> apt-get install$missing_debs"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing_debs >/dev/null
fi
if ! command -v configurable-http-proxy >/dev/null; then
  echo "==> npm install -g configurable-http-proxy"
  $SUDO npm install -g --no-fund --no-audit configurable-http-proxy >/dev/null 2>&1 \
    || $SUDO npm install -g --no-fund --no-audit configurable-http-proxy@4.6.3
fi
echo "==> pip install -e .[test,bench]"
python3 -m pip install -q --disable-pip-version-check -e ".[test,bench]" 2>&1 \
  | grep -v -e "^WARNING: Location" -e "Running pip as the 'root' user" || true
python3 -c "import kubecache, kubernetes_asyncio, redis, jupyterhub" \
  || { echo "install failed: python packages missing" >&2; exit 1; }
