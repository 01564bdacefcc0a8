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
# Python packages: a virtual environment of the checkout's own (.venv, or $KUBECACHE_VENV),
# filled from the lock (requirements/test.txt, with hashes; scripts/lock.py writes it), never
# with the newest a registry serves that day, then this checkout, editable, without
# dependencies. Nothing is installed into the machine's Python.
VENV="${KUBECACHE_VENV:-$PWD/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> python3 -m venv $VENV"
  python3 -m venv "$VENV"
fi
pip_install() {
  local out
  if ! out=$(PIP_ROOT_USER_ACTION=ignore "$VENV/bin/python" -m pip install -q \
      --disable-pip-version-check "$@" 2>&1); then
    echo "$out" >&2
    echo "install: pip install $* failed (output above)" >&2
    exit 1
  fi
  grep -v -e "^WARNING: Location" <<<"$out" || true
}
# the lock is installed again only when it changed since the last install into this venv
stamp="$VENV/.kubecache-lock.sha256"
if ! sha256sum --status -c "$stamp" 2>/dev/null; then
  echo "==> pip install -r requirements/test.txt into $VENV (locked, with hashes)"
  pip_install --no-deps --require-hashes -r requirements/test.txt
  echo "==> pip install -e . -e ./kubesim (the product and the emulator; dependencies from the lock)"
  pip_install --no-deps --no-build-isolation -e .
  # after the product: an older product wheel (with the emulator in it) would take kubesim's
  # console script with it when replaced in the same pip run
  pip_install --no-deps --no-build-isolation -e ./kubesim
  if ! "$VENV/bin/python" -m pip check >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip check >&2 || true
    echo "install: the locked packages conflict (above): re-lock with python3 scripts/lock.py" >&2
    exit 1
  fi
  sha256sum requirements/test.txt pyproject.toml kubesim/pyproject.toml >"$stamp"
fi
"$VENV/bin/python" -c "import kubecache, kubesim, kubernetes_asyncio, redis, jupyterhub, jupyterlab" \
  || { echo "install failed: python packages missing from $VENV" >&2; exit 1; }
[ -x "$VENV/bin/kubesim" ] && [ -x "$VENV/bin/kubecache" ] \
  || { echo "install failed: console scripts missing from $VENV/bin" >&2; exit 1; }
