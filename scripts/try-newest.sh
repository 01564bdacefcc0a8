#!/usr/bin/env bash
# Not part of CI: installs the newest versions pyproject.toml allows into a throwaway venv and
# runs lint, types and the fast tests there, to see what the next lock bump will break.
# Arguments go to pytest (default: -m "not e2e").
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$(mktemp -d)/newest"
trap 'rm -rf "$(dirname "$VENV")"' EXIT
python3 -m venv --without-pip --system-site-packages "$VENV"
# --ignore-installed: nothing from the locked environment underneath counts
"$VENV/bin/python" -m pip install -q --ignore-installed --upgrade -e ".[hub,test,bench]" -e ./kubesim
"$VENV/bin/python" -m pip list --format=freeze > "$VENV/../freeze.txt"
echo "==> newest versions installed; differences from requirements/test.txt:"
python3 - "$VENV/../freeze.txt" <<'PY'
import re, sys
def pins(lines):
    return {re.sub(r"[-_.]+", "-", l.split("==")[0]).lower(): l.split("==")[1].split()[0]
            for l in lines if "==" in l and not l.startswith((" ", "#"))}
locked = pins(open("requirements/test.txt").read().splitlines())
newest = pins(open(sys.argv[1]).read().splitlines())
for name in sorted(locked):
    if name in newest and newest[name] != locked[name]:
        print(f"  {name}: {locked[name]} -> {newest[name]}")
PY
status=0
"$VENV/bin/python" -m ruff check . || status=1
"$VENV/bin/python" -m mypy || status=1
if [ "$#" -eq 0 ]; then set -- -m "not e2e"; fi
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@" || status=1
exit $status
