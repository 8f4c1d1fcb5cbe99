#!/usr/bin/env bash
# Run uv, installing it first with pip when the machine does not have it (a fresh machine has
# only python3 and pip). Usage: scripts/uv.sh <uv arguments>
set -euo pipefail
if command -v uv >/dev/null 2>&1; then
  exec uv "$@"
fi
if ! python3 -m uv --version >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check uv >&2
fi
exec python3 -m uv "$@"
