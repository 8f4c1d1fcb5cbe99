#!/usr/bin/env bash
# The test suite: lint, types, the docs site, then pytest against the bundled API emulator.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
uv() { bash scripts/uv.sh "$@"; }
uv sync --quiet --locked
uv run --locked ruff check tap_demandbase tests scripts benchmarks
uv run --locked ruff format --check tap_demandbase tests scripts benchmarks
uv run --locked mypy tap_demandbase
# docs/ (mkdocs.yml): --strict fails on a broken link or anchor, or a page left out of nav.
NO_MKDOCS_2_WARNING=1 uv run --locked mkdocs build --strict --quiet  # into site/ (git-ignored)
uv run --locked pytest -n auto "$@"
