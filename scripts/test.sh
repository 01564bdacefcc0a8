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
echo "==> pytest"
python3 -m pytest -q -p no:cacheprovider "$@"
