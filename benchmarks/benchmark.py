"""Benchmark tap-demandbase against a bare exporter, on the bundled emulator, in one run.

Measures, alternating, for an accounts export of each --rows size (16 fields):
  (a) tap-demandbase in RECORD mode (the columnar path), stdout to /dev/null
  (b) two bare exporters written by hand, the baselines, defined below: "strict" (create job,
      poll, download, csv.reader, int/float/bool casts, orjson one RECORD line per row, no date
      handling) and "exact" (the same, and date-times normalised to UTC like the tap); and a
      ceiling for BATCH parquet, "polars, untyped" (download, polars' CSV reader, parquet, with
      every value left as text and nothing checked)
  (c) tap-demandbase in BATCH mode (jsonl+gzip and parquet)
and prints records/s (median of --repeats), the ratios to the strict baseline, and each process's
peak RSS (the OS's figure for the child, from wait4). Then, with --concurrency, the wall time of
six streams whose jobs each take --job-seconds on the server, with max_concurrent_jobs 1 and 6,
and the status calls each job needed.

``--dialects export_v1 uapi`` also runs the tap's modes against the emulator of Demandbase's
production API (``uapi``: client credentials, result files of 50,000 rows listed in
``resultsUrls``), alternating with the others, on the same 16 account fields (the uapi-only
``sfdc_id`` and ``engagement_minutes_last7_day`` are deselected).

The environment's bytecode is compiled first, as pip does when it installs the tap (uv does
not, and with PYTHONDONTWRITEBYTECODE every start would compile the SDK again: 0.6 s here).

    bash scripts/uv.sh run python benchmarks/benchmark.py --rows 200000 1000000 2000000
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import requests

BIN = Path(sys.executable).parent
ENTITIES = ("accounts", "activities", "buying_groups", "campaigns", "opportunities", "people")


# --- (b) the bare exporter -------------------------------------------------------------------

_BOOL = {"true": True, "false": False, "1": True, "0": False}
_UTC = datetime.timezone.utc


def _datetime(value: str) -> str:
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    parsed = datetime.datetime.fromisoformat(text)
    parsed = parsed.replace(tzinfo=_UTC) if parsed.tzinfo is None else parsed.astimezone(_UTC)
    return parsed.isoformat()


_CASTS: dict[str, Any] = {
    **dict.fromkeys(("integer", "int", "long", "bigint"), int),
    **dict.fromkeys(("number", "float", "double", "decimal", "currency", "percent"), float),
    **dict.fromkeys(("boolean", "bool"), lambda v: _BOOL[v.lower()]),
    **dict.fromkeys(("datetime", "date-time", "timestamp"), _datetime),
}


_DATETIME_TYPES = ("datetime", "date-time", "timestamp")
_STRICT_CASTS = {name: cast for name, cast in _CASTS.items() if name not in _DATETIME_TYPES}


def exported_parts(api_url: str, token: str, entity: str, start: str) -> tuple[Any, Any]:
    """Create the export job of every field of ``entity`` from ``start`` and wait for it; return
    the fields' types and the pre-signed URLs of its parts (each asked for as it is read).
    """
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    entities = api.get(f"{api_url}/export/v1/entities", timeout=30).json()["entities"]
    types = {f["name"]: f["type"] for e in entities if e["name"] == entity for f in e["fields"]}
    today = datetime.datetime.now(_UTC).date().isoformat()  # the tap's filter: same cached result
    date_range = {"field": "last_modified_date", "start": start, "end": today}
    body = {"entity_type": entity, "fields": list(types), "filters": {"date_range": date_range}}
    job = api.post(f"{api_url}/export/v1/jobs", json=body, timeout=30).json()
    while job["status"] not in ("completed", "failed", "cancelled"):
        time.sleep(0.1)
        job = api.get(f"{api_url}/export/v1/jobs/{job['id']}", timeout=30).json()

    def urls() -> Any:
        for part in range(1, job["file_parts"] + 1):
            redirect = api.get(
                f"{api_url}/export/v1/jobs/{job['id']}/download",
                params={"part": part},
                allow_redirects=False,
                timeout=30,
            )
            yield redirect.headers["Location"]

    return types, urls()


def bare_export(api_url: str, token: str, entity: str, start: str, *, exact: bool) -> int:
    """Export one entity the shortest way; write RECORD lines to stdout; return the row count.

    ``exact`` also normalises date-times to UTC, as the tap does; without it ("strict"), only
    integers, numbers and booleans are cast, and dates stay as the API wrote them.
    """
    types, urls = exported_parts(api_url, token, entity, start)
    out = sys.stdout.buffer
    rows = 0
    for url in urls:
        with requests.get(url, stream=True, timeout=300) as response:
            response.raw.decode_content = True
            response.raw.auto_close = False
            text = io.TextIOWrapper(response.raw, encoding="utf-8-sig", newline="")
            reader = csv.reader(text)
            header = next(reader)
            table = _CASTS if exact else _STRICT_CASTS
            casts = [table.get(types[name].lower()) for name in header]
            lines = []
            for row in reader:
                record = {
                    name: (None if not value else cast(value) if cast else value)
                    for name, cast, value in zip(header, casts, row, strict=True)
                }
                lines.append(
                    orjson.dumps(
                        {"type": "RECORD", "stream": entity, "record": record},
                        option=orjson.OPT_APPEND_NEWLINE,
                    )
                )
                if len(lines) == 1000:
                    out.write(b"".join(lines))
                    lines.clear()
                rows += 1
            out.write(b"".join(lines))
    out.flush()
    return rows


def bare_polars_export(api_url: str, token: str, entity: str, start: str, folder: str) -> int:
    """The ceiling for BATCH parquet: each part downloaded into memory, read by polars' CSV
    reader as text (no typing, no checks), written as parquet; return the row count.
    """
    import polars as pl

    _, urls = exported_parts(api_url, token, entity, start)
    rows = 0
    for number, url in enumerate(urls, 1):
        frame = pl.read_csv(requests.get(url, timeout=300).content, infer_schema=False)
        frame.write_parquet(Path(folder) / f"part-{number}.parquet", compression="uncompressed")
        rows += frame.height
    return rows


# --- harness ---------------------------------------------------------------------------------


def start_sandbox(
    folder: Path, rows: dict[str, int], job_seconds: float, dialect: str = "export_v1"
) -> tuple[Any, str]:
    ready = folder / f"api_url-{dialect}"
    ready.unlink(missing_ok=True)
    command = [str(BIN / "demandbase-sandbox"), "--port", "0", "--ready-file", str(ready)]
    command += ["--dialect", dialect]
    if dialect == "uapi":
        command += ["--uapi-split-files"]
    for entity, count in rows.items():
        command += ["--rows", f"{entity}={count}"]
    command += ["--rows-per-part", "50000", "--pending-seconds", "0"]
    command += ["--processing-seconds", str(job_seconds)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if ready.exists() and ready.read_text().strip():
            return process, ready.read_text().strip()
        time.sleep(0.05)
    process.kill()
    raise SystemExit("the emulator did not start")


def measure(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a command with stdout to /dev/null; return (wall seconds, peak RSS in MiB)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    stderr = process.stderr.read() if process.stderr else b""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(stderr.decode()[-3000:])
        raise SystemExit(f"failed: {' '.join(command)}")
    return wall, usage.ru_maxrss / 1024


def write_json(path: Path, value: Any) -> str:
    path.write_text(json.dumps(value))
    return str(path)


#: Fields only the uapi emulator has: deselected, so that both dialects export the same 16.
UAPI_ONLY_FIELDS = ("sfdc_id", "engagement_minutes_last7_day")


def selected_catalog(
    folder: Path, config: str, streams: tuple[str, ...], name: str = "catalog"
) -> str:
    catalog = json.loads(
        subprocess.run(
            [str(BIN / "tap-demandbase"), "--config", config, "--discover"],
            capture_output=True,
            check=True,
        ).stdout
    )
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if not item["breadcrumb"]:
                item["metadata"]["selected"] = entry["tap_stream_id"] in streams
            elif item["breadcrumb"][-1] in UAPI_ONLY_FIELDS:
                item["metadata"]["selected"] = False
    return write_json(folder / f"{name}-{len(streams)}.json", catalog)


def status_calls_per_job(api_url: str) -> Counter[str]:
    requests_seen = requests.get(f"{api_url}/_sandbox/requests", timeout=30).json()["requests"]
    calls: Counter[str] = Counter()
    for request in requests_seen:
        parts = request["path"].strip("/").split("/")
        if request["method"] == "GET" and len(parts) == 4 and parts[2] == "jobs":
            calls[parts[3]] += 1
    return calls


def polls_for(seconds: float) -> int:
    """Status calls the tap's default policy makes for a job that takes ``seconds``."""
    from tap_demandbase.dialects import export_v1

    waited, calls = 0.0, 0
    for wait in export_v1.DIALECT.poll_policy.intervals():
        waited += wait
        calls += 1
        if waited >= seconds:
            return calls
    return calls  # pragma: no cover


ENCODINGS = [
    ("jsonl.gz", {"format": "jsonl", "compression": "gzip"}),
    ("parquet", {"format": "parquet", "compression": "none"}),
]


def dialect_settings(dialect: str, api_url: str) -> dict[str, Any]:
    """Return the tap settings for one emulator dialect."""
    base = {"api_url": api_url, "start_date": "2024-01-01T00:00:00Z", "poll_interval_seconds": 0.1}
    if dialect == "uapi":
        return base | {
            "api_dialect": "uapi",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
        }
    return base | {"access_token": "sandbox-token"}


def tap_modes(folder: Path, dialect: str, api_url: str) -> dict[str, list[str]]:
    """Return the tap's modes (RECORD, BATCH) against one emulator dialect."""
    base = dialect_settings(dialect, api_url)
    label = "tap" if dialect == "export_v1" else f"{dialect} tap"
    record_config = write_json(folder / f"record-{dialect}.json", base)
    catalog = selected_catalog(folder, record_config, ("accounts",), f"catalog-{dialect}")
    tap = [str(BIN / "tap-demandbase"), "--catalog", catalog, "--config"]
    modes = {f"{label} RECORD": [*tap, record_config]}
    for name, encoding in ENCODINGS:
        root = folder / f"batches-{name}"
        batch = {"encoding": encoding, "storage": {"root": f"file://{root}"}}
        config = write_json(folder / f"batch-{dialect}-{name}.json", base | {"batch_config": batch})
        modes[f"{label} BATCH {name}"] = [*tap, config]
    return modes


def throughput(args: argparse.Namespace, folder: Path, rows: int) -> list[str]:
    """Run every mode at one size, alternating; return the lines of the table."""
    sandboxes = []
    modes: dict[str, list[str]] = {}
    try:
        for dialect in args.dialects:
            sandbox, api_url = start_sandbox(folder, {"accounts": rows}, 0, dialect)
            sandboxes.append(sandbox)
            if dialect == "export_v1":
                modes["bare strict"] = [sys.executable, __file__, "--bare", api_url]
                modes["bare exact"] = [sys.executable, __file__, "--bare-exact", api_url]
                ceiling = [sys.executable, __file__, "--bare-polars", api_url, str(folder)]
                modes["polars, untyped"] = ceiling
            modes |= tap_modes(folder, dialect, api_url)
        for mode, command in modes.items():  # warm-up: each emulator writes its files once
            if mode == "bare strict" or mode.endswith("RECORD"):
                measure(command)
        results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
        for _ in range(args.repeats):
            for mode, command in modes.items():
                for name, _ in ENCODINGS:
                    shutil.rmtree(folder / f"batches-{name}", ignore_errors=True)
                results[mode].append(measure(command))
    finally:
        for sandbox in sandboxes:
            sandbox.terminate()
            sandbox.wait()
    baseline = "bare strict" if "bare strict" in results else next(iter(results))
    strict = statistics.median(wall for wall, _ in results[baseline])
    lines = []
    for mode, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        rss = max(peak for _, peak in runs)
        lines.append(
            f"  {rows:>9,} {mode:<23}{rows / wall:>11,.0f}/s{wall:>8.2f}s"
            f"{wall / strict:>11.2f}x{strict / wall:>12.2f}x{rss:>6.0f} MiB"
        )
    return lines


def compile_bytecode() -> None:
    """Compile the environment's modules, as pip does at install (see the module docstring)."""
    import compileall
    import sysconfig

    for path in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        compileall.compile_dir(path, quiet=2, workers=2)
    compileall.compile_dir(str(Path(__file__).parents[1] / "tap_demandbase"), quiet=2)


def concurrency(args: argparse.Namespace, folder: Path) -> None:
    rows_each, seconds = args.concurrency_rows, args.job_seconds
    print(f"\n6 streams x {rows_each} rows, each job {seconds}s on the server:")
    for jobs in (1, 6):
        # A fresh emulator per run: the tap would re-use the other run's jobs otherwise.
        sandbox, api_url = start_sandbox(folder, dict.fromkeys(ENTITIES, rows_each), seconds)
        try:
            config = {
                "api_url": api_url,
                "access_token": "sandbox-token",
                "start_date": "2024-01-01T00:00:00Z",
                "poll_interval_seconds": 0.5,
                "max_poll_interval_seconds": 2,
                "max_concurrent_jobs": jobs,
            }
            path = write_json(folder / f"concurrent-{jobs}.json", config)
            catalog = selected_catalog(folder, path, ENTITIES)
            tap = [str(BIN / "tap-demandbase"), "--config", path, "--catalog", catalog]
            wall, rss = measure(tap)
            calls = sorted(status_calls_per_job(api_url).values())
            print(
                f"  max_concurrent_jobs={jobs}: {wall:6.1f}s wall, peak RSS {rss:.0f} MiB, "
                f"status calls per job {calls}"
            )
        finally:
            sandbox.terminate()
            sandbox.wait()


# --- the job slot and polling: a run as short as one job at a time allows -----------------------

#: A consumer that reads the tap's stdout at a fixed rate, as a slow target loads rows.
SLOW_CONSUMER = """
import sys, time
pause = float(sys.argv[1])
for n, line in enumerate(sys.stdin, 1):
    if line.startswith('{"type":"RECORD"') or line.startswith('{"type": "RECORD"'):
        if n % 50 == 0:
            time.sleep(pause * 50)
"""


def pipelined_run(tap: str, folder: Path, args: argparse.Namespace) -> tuple[float, int]:
    """Run ``tap`` against the uapi emulator: one stream, --pipeline-jobs windows each of
    --job-seconds on the server, into a consumer that needs about 0.7 x that per job.
    Return (wall seconds, jobs created).
    """
    jobs, seconds, rows_per_job = args.pipeline_jobs, args.job_seconds, args.pipeline_rows
    sandbox, api_url = start_sandbox(
        folder, {"activities": rows_per_job * jobs}, seconds, dialect="uapi"
    )
    try:
        config = dialect_settings("uapi", api_url) | {
            "end_date": "2024-04-30T00:00:00Z",
            "window_days": -(-121 // jobs),
            "poll_interval_seconds": 0.25,
            "max_poll_interval_seconds": 1.0,
        }
        path = write_json(folder / f"pipeline-{Path(tap).parent.parent.name}.json", config)
        catalog = selected_catalog(folder, path, ("activities",), "catalog-pipeline")
        pause = 0.7 * seconds / rows_per_job
        started = time.perf_counter()
        with subprocess.Popen(
            [tap, "--config", path, "--catalog", catalog],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as producer:
            consumer = subprocess.run(
                [sys.executable, "-c", SLOW_CONSUMER, str(pause)], stdin=producer.stdout
            )
        wall = time.perf_counter() - started
        if producer.returncode or consumer.returncode:
            raise SystemExit(f"pipeline run failed: {tap}")
        created = requests.get(f"{api_url}/_sandbox/jobs", timeout=30).json()
        return wall, len(created.get("jobs", created))
    finally:
        sandbox.terminate()
        sandbox.wait()


def pipeline(args: argparse.Namespace, folder: Path) -> None:
    """Wall time of a run of N jobs against its limit, ΣT + the last D, for this tap and, with
    --baseline-tap, another build (an older checkout's tap-demandbase).
    """
    jobs, seconds = args.pipeline_jobs, args.job_seconds
    limit = jobs * seconds + 0.7 * seconds
    print(f"\n{jobs} jobs of {seconds:g}s on the server (uapi, one at a time), emit ~0.7 x that:")
    print(f"  limit (sum of server times + the last emit): {limit:.1f}s")
    taps = [("this tap", str(BIN / "tap-demandbase"))]
    if args.baseline_tap:
        taps.append(("baseline", args.baseline_tap))
    for label, tap in taps:
        walls = [pipelined_run(tap, folder, args) for _ in range(args.repeats)]
        wall = statistics.median(w for w, _ in walls)
        ratio = wall / limit
        print(f"  {label:<9} {wall:6.1f}s wall = {ratio:.2f}x the limit ({walls[0][1]} jobs)")


def polling(seed: int = 1, jobs: int = 2000) -> None:
    """Status calls per job and the delay between a job's end and the tap seeing it, over jobs
    whose durations vary +-30% around a stream's usual time, for the doubling policy (no
    history) and the learned one (the stream's last five durations). Runs the tap's own
    PollSchedule on simulated durations: no job, no sleep.
    """
    import random

    from tap_demandbase.dialects import uapi
    from tap_demandbase.engine.polling import HISTORY_SIZE, PollSchedule

    policy = uapi.DIALECT.poll_policy
    print(f"\npolling, uapi defaults ({policy.first_interval:g}-{policy.max_interval:g}s):")
    print(f"  {'usual time':>10} {'policy':<9}{'calls/job':>10}{'mean delay':>12}")
    for usual in (120.0, 660.0, 1800.0, 3600.0):
        for learned in (False, True):
            rnd, history, calls, delays = random.Random(seed), [], [], []
            for _ in range(jobs):
                duration = usual * (1 + rnd.uniform(-0.3, 0.3))
                schedule = PollSchedule(policy, tuple(history[-HISTORY_SIZE:]) if learned else ())
                waited, count = 0.0, 0
                for wait in schedule.waits():
                    waited, count = waited + wait, count + 1
                    if waited >= duration:
                        break
                calls.append(count)
                delays.append((waited - duration) / duration)
                history.append(duration)
            name = "learned" if learned else "doubling"
            print(
                f"  {usual:>9.0f}s {name:<9}{statistics.mean(calls):>10.2f}"
                f"{statistics.mean(delays):>11.1%}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--dialects", nargs="+", default=["export_v1"], choices=["export_v1", "uapi"]
    )
    parser.add_argument("--concurrency", action="store_true", help="also the 6-stream run")
    parser.add_argument("--concurrency-rows", type=int, default=5000)
    parser.add_argument("--job-seconds", type=float, default=10.0)
    parser.add_argument("--pipeline", action="store_true", help="the job slot, against its limit")
    parser.add_argument("--pipeline-jobs", type=int, default=6)
    parser.add_argument("--pipeline-rows", type=int, default=2000, help="rows per job")
    parser.add_argument("--baseline-tap", help="another build's tap-demandbase, for --pipeline")
    parser.add_argument("--polling", action="store_true", help="only the polling simulation")
    parser.add_argument("--bare", metavar="API_URL", help=argparse.SUPPRESS)
    parser.add_argument("--bare-exact", metavar="API_URL", help=argparse.SUPPRESS)
    parser.add_argument("--bare-polars", nargs=2, metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_polars:
        api_url, folder = args.bare_polars
        with tempfile.TemporaryDirectory(dir=folder) as out:
            bare_polars_export(api_url, "sandbox-token", "accounts", "2024-01-01", out)
        return
    if args.bare or args.bare_exact:
        api_url = args.bare or args.bare_exact
        bare_export(api_url, "sandbox-token", "accounts", "2024-01-01", exact=bool(args.bare_exact))
        return
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    if args.polling or args.pipeline:
        polling()
        if args.pipeline:
            compile_bytecode()
            with tempfile.TemporaryDirectory(prefix="tap-demandbase-bench-") as folder:
                pipeline(args, Path(folder))
        return
    for seconds in (60, 600, 3600):
        print(f"status calls for a {seconds}s job with the default polling: {polls_for(seconds)}")
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="tap-demandbase-bench-") as folder:
        lines = []
        for rows in args.rows:
            lines += throughput(args, Path(folder), rows)
            print(f"{rows:,} rows done", flush=True)
        print(f"\naccounts rows x 16 fields, median of {args.repeats} runs each:")
        print(
            f"  {'rows':>9} {'mode':<23}{'records/s':>13}{'wall':>9}"
            f"{'wall/strict':>12}{'speed/strict':>13}{'peak RSS':>10}"
        )
        print("\n".join(lines))
        if args.concurrency:
            concurrency(args, Path(folder))


if __name__ == "__main__":
    main()
