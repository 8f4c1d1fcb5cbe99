"""Fields that come and go through ``meltano run`` into PostgreSQL (target-postgres, upsert).

Three runs of one Meltano project selecting ``accounts.*``, the source changing between them:
a field removed while Meltano still uses its cached catalog (the tap drops it: one WARNING, the
run exits 0, new rows hold null in its column), then discovery on the run (``--refresh-catalog``)
with a field added: the new field becomes a new column, and the removed field's column stays,
empty for the new rows.
"""

from __future__ import annotations

import shutil
import typing as t

import pytest
import yaml

from tap_demandbase.sandbox import Sandbox
from tests.support.checkout import ROOT
from tests.support.pipelines import meltano, meltano_environment
from tests.support.tap import START_DATE, fast_settings

if t.TYPE_CHECKING:
    from pathlib import Path

    from tests.support.postgres import ThrowawayPostgres

pytestmark = [pytest.mark.cli, pytest.mark.slow]
#: A throwaway PostgreSQL server for this module (test_warehouse's fixture).

SCHEMA = "fields"
PIPELINE = ("tap-demandbase", "target-postgres")


def _project(tmp_path: Path) -> Path:
    """Return a project of the shipped meltano.yml selecting every field of accounts."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "meltano.yml", project / "meltano.yml")
    config = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))
    (extractor,) = config["plugins"]["extractors"]
    extractor["select"] = ["accounts.*"]
    (project / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def _columns(server: ThrowawayPostgres) -> set[str]:
    rows = server.sql(
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = '{SCHEMA}' AND table_name = 'accounts'"
    )
    return {row[0] for row in rows}


def _cells(server: ThrowawayPostgres, column: str, ids: list[str]) -> dict[str, str]:
    listed = ", ".join(f"'{i}'" for i in ids)
    rows = server.sql(
        f"SELECT id, coalesce({column}::text, '<null>') FROM \"{SCHEMA}\".accounts "
        f"WHERE id IN ({listed})"
    )
    return {row[0]: row[1] for row in rows}


def _count(server: ThrowawayPostgres) -> int:
    return int(server.sql(f'SELECT count(*) FROM "{SCHEMA}".accounts')[0][0])


def test_meltano_runs_keep_the_table_in_step_with_fields_that_come_and_go(postgres, tmp_path):
    project = _project(tmp_path)
    with Sandbox(fast_settings()) as sb:
        env = {
            **meltano_environment(tmp_path),
            "TAP_DEMANDBASE_API_URL": sb.api_url,
            "TAP_DEMANDBASE_ACCESS_TOKEN": sb.token,
            "TAP_DEMANDBASE_START_DATE": START_DATE,
            "TAP_DEMANDBASE_POLL_INTERVAL_SECONDS": "0.05",
            "TAP_DEMANDBASE_MAX_POLL_INTERVAL_SECONDS": "0.2",
            "TARGET_POSTGRES_SQLALCHEMY_URL": postgres.url,
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": SCHEMA,
        }
        meltano(project, "install", "extractor", "tap-demandbase", env=env)
        meltano(project, "install", "loader", "target-postgres", env=env)
        meltano(project, "run", "--refresh-catalog", *PIPELINE, env=env)
        assert _count(postgres) == 120
        first = _columns(postgres)
        assert {"industry", "custom_tier__c"} <= first and "lead_score" not in first

        # industry goes; Meltano keeps its cached catalog, which still selects it.
        sb.settings.update(
            {
                "removed_fields": {"accounts": ["industry"]},
                "appended_rows": {"accounts": {"2024-04-05T09:00:00Z": 2}},
            }
        )
        stale = meltano(project, "run", *PIPELINE, env=env)
        drops = [line for line in stale.stderr.splitlines() if "no longer has" in line]
        assert len(drops) == 1 and "'accounts'" in drops[0] and "industry" in drops[0], drops
        assert _count(postgres) == 122
        new = ["acc-0000121", "acc-0000122"]
        assert _cells(postgres, "industry", new) == dict.fromkeys(new, "<null>")
        assert _cells(postgres, "industry", ["acc-0000001"]) != {"acc-0000001": "<null>"}

        # A field comes; discovery on the run makes it a column, filled from then on.
        sb.settings.update(
            {
                "removed_fields": {"accounts": ["industry"]},
                "added_fields": {"accounts": {"lead_score": "integer"}},
                "appended_rows": {
                    "accounts": {"2024-04-05T09:00:00Z": 2, "2024-04-06T09:00:00Z": 3}
                },
            }
        )
        fresh = meltano(project, "run", "--refresh-catalog", *PIPELINE, env=env)
        assert not [line for line in fresh.stderr.splitlines() if "no longer has" in line]
        assert _count(postgres) == 125
        columns = _columns(postgres)
        assert "lead_score" in columns and "industry" in columns  # the old column stays
        newest = ["acc-0000123", "acc-0000124", "acc-0000125"]
        assert _cells(postgres, "industry", newest) == dict.fromkeys(newest, "<null>")
        scores = _cells(postgres, "lead_score", newest)
        assert set(scores) == set(newest) and any(v != "<null>" for v in scores.values())
