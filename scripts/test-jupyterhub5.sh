#!/usr/bin/env bash
# The hub-facing tests (tests/spawner, tests/e2e) against the newest JupyterHub 5.x, the
# JupyterHub zero-to-jupyterhub 4.x ships; the main run (scripts/test.sh) has JupyterHub 6.x.
#
# A virtual environment of its own, filled from the lock requirements/jupyterhub5.txt (the
# test environment with JupyterHub 5; with hashes; scripts/lock.py writes it) and this
# checkout (editable, no dependencies). Arguments go to pytest; without any, the default
# test paths below.
set -euo pipefail
cd "$(dirname "$0")/.."

LOCK=requirements/jupyterhub5.txt
JUPYTERHUB5="$(sed -n 's/^jupyterhub==\([^ ]*\).*/\1/p' "$LOCK")"
[ -n "$JUPYTERHUB5" ] || { echo "$LOCK pins no jupyterhub" >&2; exit 1; }
VENV="${KUBECACHE_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubecache}/venv-jupyterhub5"

stamp="$VENV/.kubecache-lock.sha256"
if ! sha256sum --status -c "$stamp" 2>/dev/null; then
  echo "==> venv $VENV with jupyterhub==$JUPYTERHUB5 (from $LOCK)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  for args in "--no-deps --require-hashes -r $LOCK" "--no-deps --no-build-isolation -e . -e ./kubesim"; do
    # shellcheck disable=SC2086  # the words of $args are pip's arguments
    if ! out=$(PIP_ROOT_USER_ACTION=ignore "$VENV/bin/python" -m pip install -q \
        --disable-pip-version-check $args 2>&1); then
      echo "$out" >&2; echo "pip install $args failed (above)" >&2; exit 1
    fi
  done
  "$VENV/bin/python" -c "import jupyterhub, sys; sys.exit(jupyterhub.__version__ != '$JUPYTERHUB5')" \
    || { echo "jupyterhub $JUPYTERHUB5 did not install into $VENV" >&2; exit 1; }
  sha256sum "$LOCK" pyproject.toml kubesim/pyproject.toml >"$stamp"
fi

echo "==> pytest with JupyterHub $JUPYTERHUB5"
if [ "$#" -eq 0 ]; then
  # the demo is the product's own set-up: it runs with the main environment's JupyterHub
  set -- tests/spawner tests/e2e --ignore=tests/e2e/test_demo.py
fi
# the checkout's packages (the venv's editable install may point at another clone)
export PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" python -m pytest -q -p no:cacheprovider "$@"
