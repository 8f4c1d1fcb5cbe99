#!/usr/bin/env bash
# The test suite: lint, types, then pytest against the bundled API emulator.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
uv() { bash scripts/uv.sh "$@"; }
uv sync --quiet --locked
uv run --locked ruff check tap_demandbase tests scripts benchmarks
uv run --locked ruff format --check tap_demandbase tests scripts benchmarks
uv run --locked mypy tap_demandbase
uv run --locked pytest -n auto "$@"
