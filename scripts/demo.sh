#!/usr/bin/env bash
# The local demo: installs what is missing, then runs redis-server, kubesim, two cachers
# and JupyterHub on loopback. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# JupyterLab is the demo's user interface (not needed by the tests).
python3 -c "import jupyterlab" 2>/dev/null || {
  echo "==> pip install jupyterlab"
  python3 -m pip install -q --disable-pip-version-check "jupyterlab>=4" 2>&1 \
    | grep -v -e "^WARNING: Location" -e "Running pip as the 'root' user" || true
}
exec python3 scripts/demo.py "$@"
