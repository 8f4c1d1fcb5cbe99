"""The real pipelines a data engineer runs: ``tap-demandbase | target-postgres`` into a throwaway
PostgreSQL (RECORD mode, BATCH jsonl, BATCH parquet), and ``meltano run`` in a Meltano project
built from the shipped meltano.yml, twice, the second run from Meltano's stored state.

The targets and Meltano are the pinned versions meltano.yml names (their ``pip_url``), run with
``uv tool run``; the first run installs them. PostgreSQL's binaries must be on the machine
(``.ci/run`` installs them); under CI=true a missing server is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import typing as t
from pathlib import Path

import pytest
import yaml

from tap_demandbase.sandbox import Sandbox
from tests.support.checkout import ROOT
from tests.support.pipelines import (
    MELTANO,
    TIMEOUT,
    loader_pip_url,
    meltano,
    meltano_environment,
    tap_to_postgres,
    tool,
)
from tests.support.postgres import ThrowawayPostgres
from tests.support.readme import block_starting, commands
from tests.support.tap import ENTITIES, START_DATE, TAP, fast_settings, tap_config

#: Pipelines of installed commands (tap, targets, Meltano), minutes long: started first.
pytestmark = [pytest.mark.cli, pytest.mark.slow]

REPLICATION_KEYS = {"activities": "activity_date"}
#: The Postgres column type of each JSON Schema type the tap emits.
PG_TYPES = {
    "integer": "bigint",
    "number": "numeric",
    "boolean": "boolean",
    "date": "date",
    "date-time": "timestamp without time zone",
    "string": "text",
}


def _pg_type(prop: dict[str, t.Any]) -> str:
    kinds = (
        [k for k in prop["type"] if k != "null"]
        if isinstance(prop["type"], list)
        else [prop["type"]]
    )
    if kinds == ["string"] and prop.get("format") in {"date", "date-time"}:
        return PG_TYPES[prop["format"]]
    return PG_TYPES[kinds[0]]


def _emulator_count(sb: Sandbox, entity: str) -> int:
    key = REPLICATION_KEYS.get(entity, "last_modified_date")
    return len(
        {row["id"] for row in sb.expected_rows(entity, date_field=key, start=START_DATE[:10])}
    )


def _counts(postgres: ThrowawayPostgres, schema: str) -> dict[str, int]:
    return {
        entity: int(postgres.sql(f'SELECT count(*) FROM "{schema}"."{entity}"')[0][0])
        for entity in ENTITIES
    }


def _column_types(postgres: ThrowawayPostgres, schema: str, table: str) -> dict[str, str]:
    rows = postgres.sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_schema = '{schema}' AND table_name = '{table}'"
    )
    return dict(rows)  # type: ignore[arg-type]


def _catalog(tmp_path: Path, config: dict[str, t.Any]) -> dict[str, t.Any]:
    (tmp_path / "discover.json").write_text(json.dumps(config))
    done = subprocess.run(
        [TAP, "--config", str(tmp_path / "discover.json"), "--discover"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


BATCH_MODES = {
    "record": None,
    "batch_jsonl": {"format": "jsonl", "compression": "gzip"},
    "batch_parquet": {"format": "parquet"},
}


@pytest.mark.parametrize("mode", list(BATCH_MODES))
def test_tap_to_target_postgres(postgres, tmp_path, mode):
    """All six streams land with typed columns and the emulator's row counts; a second run
    from the state re-reads only the bookmark days and the upsert on id keeps the counts.
    """
    with Sandbox(fast_settings()) as sb:
        config = tap_config(sb)
        if (encoding := BATCH_MODES[mode]) is not None:
            storage = {"root": f"file://{tmp_path}/batches", "prefix": f"{mode}-"}
            config["batch_config"] = {"encoding": encoding, "storage": storage}
        target_config = {
            "sqlalchemy_url": postgres.url,
            "default_target_schema": mode,
            "load_method": "upsert",
            "add_record_metadata": True,  # as meltano.yml: the target needs it (ACTIVATE_VERSION)
        }
        state = tap_to_postgres(tmp_path, config, target_config, "run1")
        expected = {entity: _emulator_count(sb, entity) for entity in ENTITIES}
        assert _counts(postgres, mode) == expected

        catalog = _catalog(tmp_path, config)
        for entry in catalog["streams"]:
            columns = _column_types(postgres, mode, entry["tap_stream_id"])
            wanted = {name: _pg_type(prop) for name, prop in entry["schema"]["properties"].items()}
            tap_columns = {
                name: kind for name, kind in columns.items() if not name.startswith("_sdc_")
            }
            assert tap_columns == wanted, entry["tap_stream_id"]
        seen = {
            kind
            for entry in catalog["streams"]
            for kind in _column_types(postgres, mode, entry["tap_stream_id"]).values()
        }
        assert {"bigint", "numeric", "boolean", "date", "timestamp without time zone"} <= seen

        sb.reset_log()
        tap_to_postgres(tmp_path, config, target_config, "run2", state=state)
        assert _counts(postgres, mode) == expected
        created = [r for r in sb.requests() if r.method == "POST" and r.server == "api"]
        assert len(created) == len(ENTITIES)
        for request in created:  # incremental: from each stream's bookmark day, not start_date
            entity = request.body["entity_type"]
            bookmark = state["bookmarks"][entity]["replication_key_value"]
            assert request.body["filters"]["date_range"]["start"] == bookmark[:10], entity


# the commands of the README and docs/pipelines.md ------------------------------------------


def _readme_run_block(target: str) -> str:
    """Return the commands of docs/pipelines.md for a first or later run into ``target``."""
    return block_starting("set -o pipefail", containing=target)


def _shims(folder: Path, target: str) -> str:
    """Return a PATH where the documented command names run this checkout's tap and the target
    meltano.yml pins.
    """
    folder.mkdir()
    (folder / "tap-demandbase").symlink_to(TAP)
    command = " ".join(tool(loader_pip_url(target), target))
    (folder / target).write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
    (folder / target).chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def _run_block(block: str, folder: Path, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", block],
        cwd=folder,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _runs_from_bookmarks(sb: Sandbox, state: dict[str, t.Any]) -> None:
    """Assert that each stream's job of the last run started at its bookmark day."""
    created = [r for r in sb.requests() if r.method == "POST" and r.server == "api"]
    assert len(created) == len(ENTITIES)
    for request in created:
        entity = request.body["entity_type"]
        bookmark = state["bookmarks"][entity]["replication_key_value"]
        assert request.body["filters"]["date_range"]["start"] == bookmark[:10], entity


def test_readme_postgres_commands_first_and_later_runs(postgres, tmp_path):
    """The PostgreSQL run commands of docs/pipelines.md as written: the first run (no state yet),
    a second from the state the first left, and a failing one, which fails and keeps the state.
    """
    block = _readme_run_block("target-postgres")
    path = _shims(tmp_path / "bin", "target-postgres")
    folder = tmp_path / "pipeline"
    folder.mkdir()
    with Sandbox(fast_settings()) as sb:
        (folder / "tap.json").write_text(json.dumps(tap_config(sb)))
        target = {
            "sqlalchemy_url": postgres.url,
            "default_target_schema": "readme",
            "load_method": "upsert",
            "add_record_metadata": True,
        }
        (folder / "target.json").write_text(json.dumps(target))
        expected = {entity: _emulator_count(sb, entity) for entity in ENTITIES}

        first = _run_block(block, folder, path)
        assert first.returncode == 0, first.stderr[-3000:]
        state = json.loads((folder / "state.json").read_text())
        assert set(state["bookmarks"]) == set(ENTITIES)
        assert _counts(postgres, "readme") == expected

        sb.reset_log()
        again = _run_block(block, folder, path)
        assert again.returncode == 0, again.stderr[-3000:]
        _runs_from_bookmarks(sb, state)
        assert _counts(postgres, "readme") == expected
        kept = (folder / "state.json").read_text()
        assert json.loads(kept)["bookmarks"].keys() == state["bookmarks"].keys()

        (folder / "tap.json").write_text(json.dumps(tap_config(sb, access_token="wrong")))
        failed = _run_block(block, folder, path)
        assert failed.returncode != 0  # the tap's failure, through pipefail
        assert (folder / "state.json").read_text() == kept


#: DuckDB's column type of each JSON Schema type the tap emits, as target-duckdb 0.8.0 maps it.
DUCKDB_TYPES = {
    "integer": "HUGEINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "VARCHAR",  # no setting of the target types `date`: cast in SQL (docs/pipelines.md)
    "date-time": "TIMESTAMP",
    "string": "VARCHAR",
}

#: Reads the DuckDB file with the pinned duckdb: row counts, column types, and whether every
#: `date` column casts to DATE (the advice of docs/pipelines.md).
_DUCKDB_READER = """
import duckdb, json, sys
database, schema, dates = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
connection = duckdb.connect(database, read_only=True)
def rows(sql):
    return connection.execute(sql).fetchall()
tables = [t for (t,) in rows(
    f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'")]
print(json.dumps({
    "counts": {t: rows(f'SELECT count(*) FROM {schema}."{t}"')[0][0] for t in tables},
    "types": {t: dict(rows(
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_schema = '{schema}' AND table_name = '{t}'")) for t in tables},
    "dates": {t: [rows(f'SELECT count(CAST("{c}" AS DATE)) FROM {schema}."{t}"')[0][0]
                  for c in columns] for t, columns in dates.items()},
}))
"""


def _duckdb_type(prop: dict[str, t.Any]) -> str:
    kinds = (
        [k for k in prop["type"] if k != "null"]
        if isinstance(prop["type"], list)
        else [prop["type"]]
    )
    if kinds == ["string"] and prop.get("format") in {"date", "date-time"}:
        return DUCKDB_TYPES[prop["format"]]
    return DUCKDB_TYPES[kinds[0]]


def test_readme_duckdb_commands_first_and_later_runs(tmp_path):
    """The DuckDB commands of docs/pipelines.md as written, with meltano.yml's pins: every row of
    every stream lands (counts equal the emulator's), typed as the page says; a second run from
    the state re-reads only the bookmark days and upserts them.
    """
    block = _readme_run_block("target-duckdb")
    path = _shims(tmp_path / "bin", "target-duckdb")
    folder = tmp_path / "pipeline"
    folder.mkdir()
    (folder / "duckdb.json").write_text(
        json.dumps(
            {"path": str(folder / "warehouse.duckdb"), "default_target_schema": "demandbase"}
        )
    )
    with Sandbox(fast_settings()) as sb:
        config = tap_config(sb)
        (folder / "tap.json").write_text(json.dumps(config))
        catalog = _catalog(tmp_path, config)
        properties = {e["tap_stream_id"]: e["schema"]["properties"] for e in catalog["streams"]}
        dates = {
            stream: [name for name, prop in props.items() if prop.get("format") == "date"]
            for stream, props in properties.items()
        }

        def read() -> dict[str, t.Any]:
            reader = [
                *tool(loader_pip_url("target-duckdb"), "python"),
                *("-c", _DUCKDB_READER, str(folder / "warehouse.duckdb"), "demandbase"),
                json.dumps(dates),
            ]
            done = subprocess.run(
                reader, capture_output=True, text=True, timeout=TIMEOUT, check=True
            )
            return json.loads(done.stdout)

        first = _run_block(block, folder, path)
        assert first.returncode == 0, first.stderr[-3000:]
        state = json.loads((folder / "duckdb-state.json").read_text())
        expected = {entity: _emulator_count(sb, entity) for entity in ENTITIES}
        landed = read()
        assert landed["counts"] == expected
        for stream, props in properties.items():
            wanted = {name: _duckdb_type(prop) for name, prop in props.items()}
            assert landed["types"][stream] == wanted, stream
        assert {"HUGEINT", "DOUBLE", "BOOLEAN", "TIMESTAMP"} <= {
            kind for columns in landed["types"].values() for kind in columns.values()
        }
        assert any(dates.values())
        for stream, columns in dates.items():  # each date column casts, non-null values kept
            non_null = [
                sum(
                    1
                    for row in sb.expected_rows(
                        stream,
                        date_field=REPLICATION_KEYS.get(stream, "last_modified_date"),
                        start=START_DATE[:10],
                    )
                    if row[c] is not None
                )
                for c in columns
            ]
            assert landed["dates"][stream] == non_null, stream

        sb.reset_log()
        again = _run_block(block, folder, path)
        assert again.returncode == 0, again.stderr[-3000:]
        _runs_from_bookmarks(sb, state)
        assert read()["counts"] == expected


# meltano run ---------------------------------------------------------------------------------


def _jsonl_ids(folder: Path, entity: str) -> list[str]:
    path = folder / f"{entity}.jsonl"
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def test_meltano_run_twice_from_the_shipped_project(tmp_path):
    """meltano.yml as shipped (the extractor from its GitHub pip_url): install, run, run
    again; the second run starts from the state Meltano stored after the first.
    """
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "meltano.yml", project / "meltano.yml")
    with Sandbox(fast_settings()) as sb:
        env = {
            **meltano_environment(tmp_path),
            "TAP_DEMANDBASE_API_URL": sb.api_url,
            "TAP_DEMANDBASE_ACCESS_TOKEN": sb.token,
            "TAP_DEMANDBASE_START_DATE": START_DATE,
            "TAP_DEMANDBASE_POLL_INTERVAL_SECONDS": "0.05",  # a fraction, from the environment
            "TAP_DEMANDBASE_MAX_POLL_INTERVAL_SECONDS": "0.2",
            "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "out1"),
        }
        (tmp_path / "out1").mkdir()
        meltano(project, "install", env=env)
        # A fraction set the Meltano way too (stored in meltano.yml).
        meltano(
            project, "config", "set", "tap-demandbase", "job_retry_cooldown_seconds", "0.1", env=env
        )
        meltano(project, "run", "tap-demandbase", "target-jsonl", env=env)
        expected = {entity: _emulator_count(sb, entity) for entity in ENTITIES}
        for entity, count in expected.items():
            assert len(set(_jsonl_ids(tmp_path / "out1", entity))) == count, entity
        stored = meltano(project, "state", "get", "dev:tap-demandbase-to-target-jsonl", env=env)
        bookmarks = json.loads(stored.stdout.strip().splitlines()[-1])["singer_state"]["bookmarks"]
        assert set(bookmarks) == set(ENTITIES)

        sb.reset_log()
        env["TARGET_JSONL_DESTINATION_PATH"] = str(tmp_path / "out2")
        (tmp_path / "out2").mkdir()
        meltano(project, "run", "tap-demandbase", "target-jsonl", env=env)
        created = [r for r in sb.requests() if r.method == "POST" and r.server == "api"]
        assert len(created) == len(ENTITIES)
        for request in created:  # from Meltano's stored state: each stream's bookmark day
            entity = request.body["entity_type"]
            day = bookmarks[entity]["replication_key_value"][:10]
            assert request.body["filters"]["date_range"]["start"] == day, entity
        for entity, count in expected.items():
            again = _jsonl_ids(tmp_path / "out2", entity)
            assert 0 < len(again) < count, entity  # only the bookmark day, re-read


def test_meltano_add_and_run_as_the_readme_says(postgres, tmp_path):
    """The Install section's Meltano commands, as written, in a new project (the definition
    file read from this checkout instead of raw.githubusercontent.com): only the extractor is
    added, its pip_url installs, and the run lands every stream in PostgreSQL.
    """
    block = block_starting("meltano add ")
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "meltano").write_text(
        f'#!/bin/sh\nexec {" ".join(tool([MELTANO], "meltano"))} "$@"\n', encoding="utf-8"
    )
    (shims / "meltano").chmod(0o755)
    definition = re.search(r"https://raw\.githubusercontent\.com/\S+/plugin-definition\.yml", block)
    assert definition is not None, block
    with Sandbox(fast_settings()) as sb:
        env = {
            **meltano_environment(tmp_path),
            "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
            "DEMANDBASE_TOKEN": sb.token,
            "TAP_DEMANDBASE_API_URL": sb.api_url,
            "TAP_DEMANDBASE_POLL_INTERVAL_SECONDS": "0.05",
            "TAP_DEMANDBASE_MAX_POLL_INTERVAL_SECONDS": "0.2",
            "TARGET_POSTGRES_SQLALCHEMY_URL": postgres.url,
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "meltano_readme",
        }
        shell = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True}
        init = subprocess.run(["meltano", "init", "project"], timeout=TIMEOUT, **shell)
        assert init.returncode == 0, init.stderr[-3000:]
        shell["cwd"] = project = tmp_path / "project"
        add, *settings, run = commands(
            block.replace(definition[0], str(ROOT / "plugin-definition.yml"))
        )
        done = subprocess.run(["bash", "-c", add], timeout=TIMEOUT, **shell)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        plugins = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))["plugins"]
        assert set(plugins) == {"extractors"}, "meltano add also added: " + ", ".join(plugins)
        (extractor,) = plugins["extractors"]
        hub = yaml.safe_load((ROOT / "plugin-definition.yml").read_text(encoding="utf-8"))
        assert extractor["pip_url"] == hub["pip_url"] == f"git+{hub['repo']}.git"
        for line in settings:
            done = subprocess.run(["bash", "-c", line], timeout=TIMEOUT, **shell)
            assert done.returncode == 0, line + done.stderr[-3000:]

        loaders = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))["plugins"]
        project_file = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))
        project_file["plugins"]["loaders"] = [
            p for p in loaders["loaders"] if p["name"] == "target-postgres"
        ]  # the user's own loader
        (project / "meltano.yml").write_text(yaml.safe_dump(project_file, sort_keys=False))
        meltano(project, "install", "loader", "target-postgres", env=env)
        done = subprocess.run(["bash", "-c", run], timeout=TIMEOUT, **shell)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        expected = {entity: _emulator_count(sb, entity) for entity in ENTITIES}
        assert _counts(postgres, "meltano_readme") == expected
