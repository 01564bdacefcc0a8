#!/usr/bin/env bash
# Re-locks every dependency to the newest versions pyproject.toml allows, installs the result
# and runs the whole suite on it. Commit requirements/ only when it passes.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null || python3 -m pip install -q uv
python3 scripts/lock.py
git --no-pager diff --stat -- requirements/
bash scripts/test.sh "$@"
