#!/usr/bin/env bash
# The test suite: lint, types, the docs site, then pytest against the bundled API emulator.
# Usage: scripts/test.sh [pytest arguments]
#        scripts/test.sh --fast [pytest arguments]   the inner loop: tests/unit only (the tests
#        that start no emulator, server or process), in one process, without lint, types or docs
set -euo pipefail
cd "$(dirname "$0")/.."
uv() { bash scripts/uv.sh "$@"; }
if [ "${1:-}" = "--fast" ]; then
  shift
  # Run again and again, the loop keeps its bytecode (some shells set PYTHONDONTWRITEBYTECODE,
  # which makes every run compile the SDK and the tests anew: 5 s more).
  unset PYTHONDONTWRITEBYTECODE
  exec bash scripts/uv.sh run --locked --quiet pytest tests/unit -n 0 -q "$@"
fi
uv sync --quiet --locked
uv run --locked ruff check tap_demandbase tests scripts benchmarks
uv run --locked ruff format --check tap_demandbase tests scripts benchmarks
uv run --locked mypy tap_demandbase
# docs/ (mkdocs.yml): --strict fails on a broken link or anchor, or a page left out of nav.
NO_MKDOCS_2_WARNING=1 uv run --locked mkdocs build --strict --quiet  # into site/ (git-ignored)
uv run --locked pytest -n auto "$@"
