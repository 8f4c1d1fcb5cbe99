"""No credential goes to a host other than the API's, redirects included. A 307 or 308 from the
token endpoint or from an authenticated API endpoint, of either dialect, is not followed: the
run stops with one error line naming both hosts, and the host the redirect points at receives
nothing (no request, so no body, Authorization header or secret), at DEBUG too.
"""

from __future__ import annotations

import pytest

from tests.support.bystander import Bystander
from tests.support.dialect_cases import CASES, sandbox_for
from tests.support.tap import discover, run_tap, select

#: (dialect, endpoint that redirects, status); the first three are asked at discovery.
REDIRECTS = [
    ("export_v1", "entities", 307),
    ("export_v1", "create", 308),
    ("export_v1", "status", 307),
    ("uapi", "token", 307),
    ("uapi", "token", 308),
    ("uapi", "fields", 308),
    ("uapi", "create", 307),
    ("uapi", "status", 308),
]
DISCOVERY_ENDPOINTS = ("entities", "fields", "token")


@pytest.mark.parametrize(("dialect", "endpoint", "status"), REDIRECTS)
def test_a_redirect_of_a_request_with_credentials_is_refused(
    dialect, endpoint, status, tmp_path, monkeypatch
):
    monkeypatch.setenv("LOGLEVEL", "DEBUG")
    with sandbox_for(dialect) as sb, Bystander() as bystander:
        case = CASES[dialect](sb)
        config = case.config()
        args: tuple[str, ...] = ("--discover",)
        catalog = None
        if endpoint not in DISCOVERY_ENDPOINTS:
            args = ()
            catalog = select(discover(tmp_path, config), {"accounts": None, "people": None})
        sb.settings.http_errors = {endpoint: -1}
        sb.settings.http_error_status = status
        sb.settings.http_error_location = bystander.url
        run = run_tap(tmp_path, config, *args, catalog=catalog)

        assert bystander.received == []
        assert run.returncode == 1
        assert "Traceback" not in run.stderr
        (line,) = run.error_lines
        assert sb.api_url in line and bystander.url in line
        assert str(status) in line and "api_url" in line
        assert "credentials were refused" not in line and "refused the client" not in line
        assert "DEBUG" in run.stderr  # the debug records are there, and carry no secret
        for secret in case.secrets():
            assert secret not in run.stderr
        assert "Bearer" not in run.stderr
        if catalog is not None:  # the run stopped: no job for the second stream
            creates = [r for r in case.api_requests() if r.method == "POST" and "job" in r.path]
            assert len(creates) == 1
