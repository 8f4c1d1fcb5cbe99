"""The emulator's knobs at run time: every knob set over HTTP, and reset forgetting jobs and
quota counters.
"""

from __future__ import annotations

import time

import requests

from tap_demandbase.sandbox import Sandbox, SandboxSettings
from tap_demandbase.sandbox.knobs import knobs

FAST = {"pending_seconds": 0.01, "processing_seconds": 0.02}


def test_http_settings_endpoint_accepts_every_knob() -> None:
    with Sandbox(SandboxSettings(**FAST)) as sb:
        current = requests.get(sb.api_url + "/_sandbox/settings", timeout=10).json()
        assert set(current) == {k.name for k in knobs()}
        echoed = requests.post(sb.api_url + "/_sandbox/settings", json=current, timeout=10)
        assert echoed.status_code == 200 and echoed.json() == current


def test_reset_forgets_jobs_and_quota_counters() -> None:
    settings = SandboxSettings(rows={"accounts": 30}, quota_bytes=1, **FAST)
    with Sandbox(settings) as sb:
        headers = {"Authorization": f"Bearer {sb.token}"}
        jobs = sb.api_url + "/export/v1/jobs"

        def create() -> requests.Response:
            body = {"entity_type": "accounts", "fields": ["id"]}
            return requests.post(jobs, json=body, headers=headers, timeout=10)

        first = create().json()
        while requests.get(f"{jobs}/{first['id']}", headers=headers, timeout=10).json()[
            "status"
        ] in ("pending", "processing"):
            time.sleep(0.005)
        assert create().status_code == 429  # today's bytes spent the (tiny) quota
        assert requests.post(sb.api_url + "/_sandbox/reset", timeout=10).json() == {"reset": True}
        assert sb.requests() == []
        assert requests.get(sb.api_url + "/_sandbox/jobs", timeout=10).json() == {"jobs": []}
        assert requests.get(jobs, headers=headers, timeout=10).json() == {"jobs": [], "total": 0}
        gone = requests.get(f"{jobs}/{first['id']}", headers=headers, timeout=10)
        assert gone.status_code == 404
        again = create()
        assert again.status_code == 202  # the byte counter was cleared too
        assert again.json()["id"] == "job-000002"  # ids are never reused
        assert sb.settings.quota_bytes == 1  # knobs stay as they are
        sb.reset()
        assert sb.jobs() == []
