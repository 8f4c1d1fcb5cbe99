#!/usr/bin/env bash
# Demo pipeline, no Demandbase account needed: the bundled API emulator → tap-demandbase →
# target-csv, first a full sync, then an incremental one from the state the first one left.
# DEMO_DIALECT=uapi runs it against the emulator of Demandbase's production API (client
# credentials, 8 streams) instead of the published contract (export_v1, the default).
set -euo pipefail
cd "$(dirname "$0")/.."
uv() { bash scripts/uv.sh "$@"; }
target=(uv tool run --quiet --from "meltanolabs-target-csv==0.5.0" target-csv)

uv sync --quiet --locked
dialect=${DEMO_DIALECT:-export_v1}
demo=.demo  # .demo/uapi for the uapi demo: both can run at once
[ "$dialect" = export_v1 ] || demo=".demo/$dialect"
case "$dialect" in
  export_v1 | uapi) ;;
  *) echo "DEMO_DIALECT must be export_v1 or uapi, not '$dialect'" >&2; exit 2 ;;
esac
if [ "$dialect" = export_v1 ]; then  # keep the other dialects' demos: they may be running
  find .demo -mindepth 1 -maxdepth 1 ! -name uapi -exec rm -rf {} + 2>/dev/null || true
else
  rm -rf "$demo"
fi
mkdir -p "$demo/output"

echo "==> Starting the Demandbase API emulator ($dialect)"
# The environment's own python, started directly: $! must be the emulator itself (uv is a shell
# function here, so `uv run ... &` would leave the emulator behind when the trap kills $!).
python_bin=$(uv run --locked python -c 'import sys; print(sys.executable)')
"$python_bin" -m tap_demandbase.sandbox --dialect "$dialect" --port 0 --pending-seconds 0.5 \
  --processing-seconds 1 --write-config "$demo/tap.json" --ready-file "$demo/api_url" \
  >"$demo/sandbox.log" 2>&1 &
sandbox_pid=$!
trap 'kill "$sandbox_pid" 2>/dev/null; wait "$sandbox_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$demo/api_url" ] && break; sleep 0.1; done
[ -s "$demo/api_url" ] || { cat "$demo/sandbox.log"; echo "the emulator did not start" >&2; exit 1; }
head -2 "$demo/sandbox.log"  # its URL, and the tap config it wrote to $demo/tap.json
cat >"$demo/target.json" <<JSON
{"output_path": "$demo/output", "file_naming_scheme": "{stream_name}.csv"}
JSON

echo "==> Run 1: tap-demandbase --config $demo/tap.json | target-csv (full sync of every stream)"
uv run --locked tap-demandbase --config "$demo/tap.json" 2>"$demo/run1.log" |
  "${target[@]}" --config "$demo/target.json" >"$demo/run1.state" 2>"$demo/target1.log"
grep -E "export job .*(created|→)" "$demo/run1.log" | sed -E 's/^.*\| //' || true  # every job
grep -E "Run summary" "$demo/run1.log" | sed -E 's/^.*\| //' || true
tail -1 "$demo/run1.state" >"$demo/state.json"

echo "==> Run 2: the same pipeline with --state $demo/state.json (incremental)"
mkdir -p "$demo/output2" && sed -i "s|$demo/output\"|$demo/output2\"|" "$demo/target.json"
uv run --locked tap-demandbase --config "$demo/tap.json" --state "$demo/state.json" \
  2>"$demo/run2.log" | "${target[@]}" --config "$demo/target.json" >"$demo/run2.state" 2>"$demo/target2.log"

uv run --locked python - "$demo" <<'PY'
import csv, json, pathlib, sys
demo = pathlib.Path(sys.argv[1])
state = json.loads((demo / "state.json").read_text())["bookmarks"]
print("\nWhat landed (target-csv files):")
print(f"  {'stream':<22}{'run 1 rows':>11}{'run 2 rows':>11}   bookmark after run 1")
for path in sorted((demo / "output").glob("*.csv")):
    stream = path.stem
    again = demo / "output2" / path.name
    count = lambda p: sum(1 for _ in csv.DictReader(p.open(newline="", encoding="utf-8"))) if p.exists() else 0
    bookmark = state.get(stream, {})
    print(f"  {stream:<22}{count(path):>11}{count(again):>11}   "
          f"{bookmark.get('replication_key')}={bookmark.get('replication_key_value')}")
print("\nRun 2 re-read only each stream's bookmark day (at-least-once; de-duplicate on id);")
print("streams without a bookmark (FULL_TABLE) were exported whole again.")
print(f"\nFirst rows of {demo}/output/accounts.csv:")
with (demo / "output" / "accounts.csv").open(newline="", encoding="utf-8") as f:
    for i, row in enumerate(csv.DictReader(f)):
        if i == 3:
            break
        print("  " + json.dumps({k: row[k] for k in list(row)[:6]}, ensure_ascii=False))
PY
echo "Files: $demo/output/*.csv; logs: $demo/run1.log, $demo/run2.log"
