#!/usr/bin/env bash
# Build the wheel and sdist into dist/ (version from the git tag, hatch-vcs), then check the
# metadata PyPI will show (twine check). Usage: scripts/build.sh [output folder]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
rm -rf "$out"
bash scripts/uv.sh build --quiet --out-dir "$out"
bash scripts/uv.sh tool run --quiet --from "twine==7.0.0" twine check --strict "$out"/*
