#!/usr/bin/env bash
# Installs what is missing, then lints, type-checks and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
echo "==> ruff"
python3 -m ruff check .
echo "==> mypy"
python3 -m mypy
echo "==> import contracts"
lint-imports
echo "==> pytest (JupyterHub $(python3 -c 'import jupyterhub; print(jupyterhub.__version__)'))"
python3 -m pytest -q -p no:cacheprovider "$@"
# a full run also tests the hub-facing parts against JupyterHub 5.x, in a venv of its own
if [ "$#" -eq 0 ] && [ -z "${KUBECACHE_SKIP_JUPYTERHUB5:-}" ]; then
  bash scripts/test-jupyterhub5.sh
fi
