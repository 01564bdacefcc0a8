#!/usr/bin/env bash
# Installs what is missing, then lints, type-checks and runs the whole test suite, in the
# checkout's virtual environment (.venv, filled from the lock by scripts/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
VENV="${KUBECACHE_VENV:-$PWD/.venv}"
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
echo "==> ruff"
python -m ruff check .
python -m ruff format --check .
echo "==> mypy"
python -m mypy
echo "==> import contracts"
lint-imports
echo "==> pytest (JupyterHub $(python -c 'import jupyterhub; print(jupyterhub.__version__)'))"
python -m pytest -q -p no:cacheprovider "$@"
# a full run also tests the hub-facing parts against JupyterHub 5.x, in a venv of its own
if [ "$#" -eq 0 ] && [ -z "${KUBECACHE_SKIP_JUPYTERHUB5:-}" ]; then
  bash scripts/test-jupyterhub5.sh
fi
