#!/usr/bin/env bash
# Start and stop the bundled API emulator from a shell script (sourced by scripts/demo.sh).
#   sandbox_start DIR [demandbase-sandbox options...]  start it on a free port; its URL is then in
#                                                      DIR/api_url and its log in DIR/sandbox.log
#   sandbox_stop                                       stop it and wait until it has exited
# sandbox_start also installs traps, so the emulator is stopped however the script ends: normal
# exit, a failing command under `set -e`, Ctrl-C or SIGTERM.
# The emulator is started from .venv/bin directly, not through a shell function such as `uv run`:
# `$!` must be the emulator's own pid, not that of a subshell that would die alone.

sandbox_start() {
  local dir=$1
  shift
  rm -f "$dir/api_url"
  "${SANDBOX_BIN:-.venv/bin/demandbase-sandbox}" --port 0 --ready-file "$dir/api_url" "$@" \
    >"$dir/sandbox.log" 2>&1 &
  SANDBOX_PID=$!
  trap sandbox_stop EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  for _ in $(seq 200); do
    [ -s "$dir/api_url" ] && return 0
    kill -0 "$SANDBOX_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$dir/sandbox.log" >&2
  echo "the emulator did not start" >&2
  return 1
}

sandbox_stop() {
  if [ -n "${SANDBOX_PID:-}" ]; then
    kill "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
    SANDBOX_PID=
  fi
}
