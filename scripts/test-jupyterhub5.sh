#!/usr/bin/env bash
# The hub-facing tests (tests/spawner, tests/e2e) against the newest JupyterHub 5.x, the
# JupyterHub zero-to-jupyterhub 4.x ships; the main run (scripts/test.sh) has JupyterHub 6.x.
#
# A virtual environment of its own, on top of the installed test environment
# (--system-site-packages): only JupyterHub 5 and what it needs differently are installed
# into it, from pip's cache after the first run. Arguments go to pytest; without any, the
# default test paths below.
set -euo pipefail
cd "$(dirname "$0")/.."

JUPYTERHUB5="${KUBECACHE_JUPYTERHUB5:-5.5.4}"
VENV="${KUBECACHE_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubecache}/venv-jupyterhub5"

installed() {
  [ -x "$VENV/bin/python" ] \
    && "$VENV/bin/python" -c "import jupyterhub, sys; sys.exit(jupyterhub.__version__ != '$JUPYTERHUB5')" \
       2>/dev/null
}

if ! installed; then
  echo "==> venv $VENV with jupyterhub==$JUPYTERHUB5"
  rm -rf "$VENV"
  # --without-pip: the installed pip serves the venv too (no ensurepip/python3-venv needed)
  python3 -m venv --without-pip --system-site-packages "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "jupyterhub==$JUPYTERHUB5" 2>&1 \
    | grep -v -e "^WARNING: Location" -e "Running pip as the 'root' user" || true
  installed || { echo "jupyterhub $JUPYTERHUB5 did not install into $VENV" >&2; exit 1; }
fi

echo "==> pytest with JupyterHub $JUPYTERHUB5"
if [ "$#" -eq 0 ]; then
  # the demo is the product's own set-up: it runs with the main environment's JupyterHub
  set -- tests/spawner tests/e2e --ignore=tests/e2e/test_demo.py
fi
# the checkout's packages, whatever the editable install points at
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
