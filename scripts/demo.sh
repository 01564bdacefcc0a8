#!/usr/bin/env bash
# The local demo: installs what is missing, then runs redis-server, kubesim, two cachers
# and JupyterHub on loopback. Ctrl-C stops everything.
# The packages come from the lock (scripts/install.sh); an editable install of kubecache
# that points to another clone is left as it is: this checkout's code runs through
# PYTHONPATH (scripts/demo.py sets it for every process it starts).
set -euo pipefail
cd "$(dirname "$0")/.."
KUBECACHE_KEEP_INSTALL=1 bash scripts/install.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# JupyterLab is the demo's user interface (not needed by the tests).
python3 -c "import jupyterlab" 2>/dev/null || {
  echo "==> pip install jupyterlab"
  python3 -m pip install -q --disable-pip-version-check "jupyterlab>=4" 2>&1 \
    | grep -v -e "^WARNING: Location" -e "Running pip as the 'root' user" || true
}
exec python3 scripts/demo.py "$@"
