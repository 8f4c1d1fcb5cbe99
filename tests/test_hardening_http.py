"""HTTP holes a hostile test found: secrets in logs, and their fixes."""

from __future__ import annotations

from tests.conftest import discover, run_tap, select, tap_config


def _signatures(sandbox) -> set[str]:
    return {r.query["signature"] for r in sandbox.requests() if r.server == "files" and r.query}


def test_debug_logs_carry_no_signature_and_no_token(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("LOGLEVEL", "DEBUG")
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"accounts": None})
    run = run_tap(tmp_path, config, catalog=catalog)
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
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"campaigns": None})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 1
    assert any("404" in line for line in run.error_lines), run.stderr[-2000:]
    assert "(request: http://" in run.stderr  # the echo reached the log, scrubbed
    for signature in _signatures(sandbox):
        assert signature not in run.stderr
    assert "signature=" not in run.stderr
