#!/usr/bin/env bash
# Installs everything kubecache's tests and demo need on a fresh Debian machine.
# Idempotent: what is already there is not installed again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

if ! command -v redis-server >/dev/null; then
  echo "==> apt-get install redis-server"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
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
