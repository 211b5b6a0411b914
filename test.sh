#!/usr/bin/env bash
# Command 2: set up if needed (idempotent), then lint, type-check and run the whole test suite,
# real-simulator tests included. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy sim2real_env agents generators benchmarks
.venv/bin/python -m pytest "$@"
