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
# PostgreSQL: the hub database of the highly-available hub tests (started by the tests themselves)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing_debs="$missing_debs postgresql"
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
# Python packages from the lock (requirements/test.txt, with hashes; scripts/lock.py writes
# it), never the newest a registry serves that day; then this checkout, without dependencies.
pip_install() {
  local out
  if ! out=$(PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check "$@" 2>&1); then
    echo "$out" >&2
    echo "install: pip install $* failed (output above)" >&2
    exit 1
  fi
  grep -v -e "^WARNING: Location" <<<"$out" || true
}
echo "==> pip install -r requirements/test.txt (locked, with hashes)"
pip_install --no-deps --require-hashes -r requirements/test.txt
echo "==> pip install -e . (its dependencies come from the lock)"
pip_install --no-deps --no-build-isolation -e .
if ! python3 -m pip check >/dev/null 2>&1; then
  python3 -m pip check >&2 || true
  echo "install: installed packages conflict (above); re-run after fixing, or re-lock: python3 scripts/lock.py" >&2
  exit 1
fi
python3 -c "import kubecache, kubernetes_asyncio, redis, jupyterhub" \
  || { echo "install failed: python packages missing" >&2; exit 1; }
