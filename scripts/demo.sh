#!/usr/bin/env bash
# The local demo: installs what is missing (into the checkout's .venv, from the lock), then
# runs redis-server, kubesim, two cachers and JupyterHub on loopback. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
VENV="${KUBECACHE_VENV:-$PWD/.venv}"
export PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV"
exec python scripts/demo.py "$@"
