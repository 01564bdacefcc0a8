#!/usr/bin/env bash
# The local demo: installs what is missing, then runs redis-server, kubesim, two cachers
# and JupyterHub on loopback. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec python3 scripts/demo.py "$@"
