"""HTTP against a misbehaving API and download host: no secret in any log line, redirects,
retries, gzip, cut and trickling downloads, sizes that disagree, private spool files.

No credential goes to a host other than the API's, redirects included: a 307 or 308 from the
token endpoint or an authenticated API endpoint, of either dialect, is not followed; the run
stops with one error line naming both hosts, and the redirect's host receives nothing.
"""

from __future__ import annotations

import pytest

from tests.support.bystander import Bystander
from tests.support.dialect_cases import CASES, sandbox_for
from tests.support.tap import discover, run_tap, select, tap_config


def _sync(sandbox, tmp_path, streams, *, state=None, **overrides):
    """Discover, select ``streams`` (all their fields) and run a sync with the real CLI."""
    config = tap_config(sandbox, **overrides)
    catalog = select(discover(tmp_path, config), dict.fromkeys(streams))
    return run_tap(tmp_path, config, catalog=catalog, state=state)


def _signatures(sandbox) -> set[str]:
    return {r.query["signature"] for r in sandbox.requests() if r.server == "files" and r.query}


def _files(sandbox):
    return [r for r in sandbox.requests() if r.server == "files"]


def _accounts_run(sandbox, tmp_path, **overrides):
    return _sync(sandbox, tmp_path, ["accounts"], **overrides)


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


def test_debug_logs_carry_no_signature_and_no_token(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("LOGLEVEL", "DEBUG")
    run = _sync(sandbox, tmp_path, ["accounts"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert "urllib3" in run.stderr  # third-party DEBUG records are there, and scrubbed
    signatures = _signatures(sandbox)
    assert len(signatures) >= 3
    for signature in signatures:
        assert signature not in run.stderr
    assert "signature=" not in run.stderr
    assert sandbox.token not in run.stderr


def test_storage_error_quoting_the_url_is_scrubbed(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("LOGLEVEL", "DEBUG")
    sandbox.settings.echo_url_in_errors = True
    sandbox.settings.http_errors = {"file": -1}
    sandbox.settings.http_error_status = 404
    run = _sync(sandbox, tmp_path, ["campaigns"])
    assert run.returncode == 1
    assert any("404" in line for line in run.error_lines), run.stderr[-2000:]
    assert "(request: http://" in run.stderr  # the echo reached the log, scrubbed
    for signature in _signatures(sandbox):
        assert signature not in run.stderr
    assert "signature=" not in run.stderr


def test_redirect_chain_is_followed_without_credentials(sandbox, tmp_path):
    sandbox.settings.redirect_style = "chain"
    run = _sync(sandbox, tmp_path, ["accounts"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.records["accounts"]) == 120
    paths = [r.path for r in _files(sandbox)]
    assert any(p.startswith("/hop/2/") for p in paths)
    assert any(p.startswith("/hop/1/") for p in paths)
    assert not any(r.has_authorization for r in _files(sandbox))


def test_bad_redirects_are_one_line(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"campaigns": None})
    for style, words in [("no_location", "without a Location header"), ("file_url", "'file:'")]:
        sandbox.settings.redirect_style = style
        run = run_tap(tmp_path, config, catalog=catalog)
        assert run.returncode == 1
        assert "Traceback" not in run.stderr
        assert any(words in line for line in run.error_lines), run.stderr[-2000:]


def test_download_host_401_fails_that_stream_not_the_run(sandbox, tmp_path):
    sandbox.settings.http_errors = {"file": 6}
    sandbox.settings.http_error_status = 401
    run = _sync(sandbox, tmp_path, ["accounts", "campaigns"])
    assert run.returncode == 1
    assert "access token" not in run.stderr
    assert any("Stream 'accounts' failed" in line for line in run.error_lines), run.stderr
    assert len(run.records["campaigns"]) == 20
    assert "export_job" in run.last_state["bookmarks"]["accounts"]


def test_429_without_retry_after_stops_like_the_quota(sandbox, tmp_path):
    sandbox.settings.http_errors = {"create": -1}
    sandbox.settings.http_error_status = 429
    run = _sync(sandbox, tmp_path, ["accounts", "campaigns"])
    assert run.returncode == 1
    assert any("quota" in line for line in run.error_lines), run.stderr[-2000:]
    posts = [r for r in sandbox.requests() if r.method == "POST" and r.server == "api"]
    assert len(posts) == 1


def test_cut_gzip_encoded_download_resumes_in_encoded_bytes(sandbox, tmp_path):
    sandbox.settings.gzip_encoding = True
    sandbox.settings.cut_downloads = 2
    run = _accounts_run(sandbox, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert "broke off" in run.stderr or "ended at" in run.stderr
    assert len(run.records["accounts"]) == 120
    ranges = [r for r in sandbox.requests() if r.server == "files" and r.status == 206]
    assert ranges


@pytest.mark.parametrize("form", ["gzip_encoding", "gzip_files"])
@pytest.mark.parametrize("counted", ["served", "decoded"])
def test_gzip_result_is_complete_whichever_size_the_job_reports(sandbox, tmp_path, form, counted):
    """file_size_bytes is the compressed file the server holds (or, by some servers, the
    decoded CSV): either way the result is whole, delivered once, and the bookmark advances.
    """
    setattr(sandbox.settings, form, True)
    sandbox.settings.gzip_file_size = counted
    run = _accounts_run(sandbox, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "incomplete" not in run.stderr
    assert len({r["id"] for r in run.records["accounts"]}) == len(run.records["accounts"]) == 120
    bookmark = run.last_state["bookmarks"]["accounts"]
    assert bookmark["replication_key_value"] and "export_job" not in bookmark


@pytest.mark.parametrize("form", ["gzip_encoding", "gzip_files"])
def test_short_gzip_result_still_fails_as_incomplete(sandbox, tmp_path, form):
    setattr(sandbox.settings, form, True)
    sandbox.settings.file_size_offset = 7
    run = _accounts_run(sandbox, tmp_path)
    assert run.returncode == 1
    assert any(
        "file_size_bytes=" in line and "gzip-compressed" in line for line in run.error_lines
    ), run.stderr[-2000:]
    assert run.last_state["bookmarks"]["accounts"]["export_job"]["inconsistent"]


def test_trickling_download_is_a_broken_transfer(sandbox, tmp_path):
    sandbox.settings.trickle_downloads = 1
    sandbox.settings.trickle_seconds = 0.5
    run = _accounts_run(sandbox, tmp_path, download_stall_seconds=1)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "stalled" in run.stderr
    assert len(run.records["accounts"]) == 120


def test_part_without_length_cut_mid_line_is_resumed(sandbox, tmp_path):
    sandbox.settings.omit_content_length = True
    sandbox.settings.cut_downloads = 1
    run = _accounts_run(sandbox, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "without a complete last line" in run.stderr
    assert len(run.records["accounts"]) == 120


def test_bytes_disagreeing_with_file_size_bytes_fail_without_bookmark(sandbox, tmp_path):
    sandbox.settings.file_size_offset = 7
    run = _sync(sandbox, tmp_path, ["accounts"])
    assert run.returncode == 1
    assert any("file_size_bytes=" in line for line in run.error_lines), run.stderr[-2000:]
    assert "replication_key_value" not in run.last_state["bookmarks"]["accounts"]
    assert run.last_state["bookmarks"]["accounts"]["export_job"]["inconsistent"]
    # The next run does not trust that job: a new export of the window, all rows, bookmark.
    sandbox.settings.file_size_offset = 0
    again = _sync(sandbox, tmp_path, ["accounts"], state=run.last_state)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(again.records["accounts"]) == 120
    assert again.last_state["bookmarks"]["accounts"]["replication_key_value"]
    posts = [r for r in sandbox.requests() if r.method == "POST" and r.server == "api"]
    assert len(posts) == 2


@pytest.mark.cli  # stale spools are removed once per process, at its first download
def test_spool_files_are_private_and_stale_spools_removed(sandbox, tmp_path, monkeypatch):
    import subprocess
    import sys

    from tap_demandbase.engine.results import _private_file

    with _private_file(tmp_path / "spool.csv") as out:
        out.write(b"x")
    assert (tmp_path / "spool.csv").stat().st_mode & 0o777 == 0o600
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    temp = tmp_path / "tmp"
    temp.mkdir()
    stale = temp / f"tap-demandbase-{dead.stdout.strip()}-abc"
    stale.mkdir()
    (stale / "job-1-part-1.csv").write_text("id\n1\n")
    monkeypatch.setenv("TMPDIR", str(temp))
    run = _accounts_run(sandbox, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not stale.exists()
    assert not list(temp.iterdir())  # this run's own spool is gone too


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
