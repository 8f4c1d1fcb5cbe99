#!/usr/bin/env bash
# Run uv. Usage: scripts/uv.sh <uv arguments>
#
# A fresh machine may have only python3 (and pip). uv is then installed into this checkout's
# private folder .uv-bootstrap/, never into the system's Python, which PEP 668 systems (Debian 12,
# Ubuntu 23.04+) refuse with "externally-managed-environment": as a virtual environment
# (python3 -m venv, pip from ensurepip), else, where venv has no ensurepip (Debian without
# python3-venv), with `pip install --target`, which PEP 668 leaves alone.
set -euo pipefail
if command -v uv >/dev/null 2>&1; then
  exec uv "$@"
fi
boot="$(cd "$(dirname "$0")/.." && pwd)/.uv-bootstrap"
say() { echo "scripts/uv.sh: $*" >&2; }

if ! "$boot/bin/uv" --version >/dev/null 2>&1; then
  if ! command -v python3 >/dev/null 2>&1; then
    say "neither uv nor python3 is on PATH: install uv (https://docs.astral.sh/uv/) or python3"
    exit 1
  fi
  say "uv is not on PATH: installing it into $boot (private to this checkout)"
  build="$boot.$$"  # built aside, then moved in: two scripts bootstrapping at once do not mix
  trap 'rm -rf "$build"' EXIT
  if python3 -m venv "$build" >/dev/null 2>&1; then
    "$build/bin/python" -m pip install --quiet --disable-pip-version-check uv >&2
  elif python3 -m pip --version >/dev/null 2>&1; then
    rm -rf "$build"
    say "python3 -m venv has no pip (Debian/Ubuntu: apt install python3-venv): using pip --target"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
      --target "$build" uv >&2
  else
    say "cannot install uv: python3 has neither a working venv nor pip;" \
      "install uv (https://docs.astral.sh/uv/) or python3-venv, then run this again"
    exit 1
  fi
  "$build/bin/uv" --version >/dev/null
  if ! "$boot/bin/uv" --version >/dev/null 2>&1; then  # else another script was faster
    rm -rf "$boot"
    mv "$build" "$boot"
  fi
  rm -rf "$build"
  trap - EXIT
fi
exec "$boot/bin/uv" "$@"
