"""An answer of 200 that is not the JSON the dialect reads (an array where an object is
expected, an object without its key, an array of the wrong things) is one error line naming
what was asked and what came back, for every JSON answer either client reads: never a
traceback, and never the blame of a setting that is not the cause.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.dialect_cases import CASES, sandbox_for
from tests.support.tap import discover, run_tap, select

DISCOVERY_ENDPOINTS = ("entities", "fields", "token")

#: (dialect, endpoint, the JSON it answers, words the line names: what was asked, what came).
ODD_ANSWERS: list[tuple[str, str, Any, tuple[str, ...]]] = [
    ("export_v1", "entities", [], ("listing entities", "an empty JSON array")),
    ("export_v1", "entities", [{"name": "accounts"}], ("listing entities", "a JSON array")),
    ("export_v1", "entities", {"data": []}, ("/entities", "a JSON object without 'entities'")),
    ("export_v1", "entities", {"entities": {"accounts": {}}}, ("'entities' as a JSON object",)),
    ("export_v1", "entities", {"entities": ["accounts"]}, ("entity 1 as a JSON string",)),
    (
        "export_v1",
        "entities",
        {"entities": [{"name": "accounts", "fields": {"id": "string"}}]},
        ("the fields of entity 'accounts' as a JSON object",),
    ),
    (
        "export_v1",
        "create",
        [{"id": "job-1", "status": "pending"}],
        ("creating the accounts export job", "a JSON array"),
    ),
    ("export_v1", "status", ["completed"], ("reading export job", "a JSON array")),
    ("export_v1", "list", "jobs", ("listing export jobs", "a JSON string")),
    ("uapi", "token", [], ("token request", "an empty JSON array")),
    ("uapi", "token", {"token": "x"}, ("token request", "without an 'accessToken'")),
    ("uapi", "fields", [], ("listing the fields of", "an empty JSON array")),
    ("uapi", "fields", {"fields": []}, ("/fields", "a JSON object")),
    ("uapi", "fields", [1, 2], ("/fields", "entry 1 as a JSON number")),
    ("uapi", "create", [], ("creating the accounts export job", "an empty JSON array")),
    ("uapi", "status", [{"jobStatus": "finished"}], ("reading export job", "a JSON array")),
    (
        "uapi",
        "status",
        {"jobId": "j-1", "jobStatus": "finished", "resultsUrls": {"part1": "https://x.test/1"}},
        ("reading export job", "resultsUrls is a JSON object"),
    ),
    ("uapi", "list", {"items": []}, ("listing export jobs", "a JSON object without 'data'")),
]


@pytest.mark.parametrize(
    ("dialect", "endpoint", "answer", "words"),
    ODD_ANSWERS,
    ids=[f"{d}-{e}-{i}" for i, (d, e, _, _) in enumerate(ODD_ANSWERS)],
)
def test_an_answer_of_another_shape_is_one_line_saying_what_came_back(
    dialect, endpoint, answer, words, tmp_path
):
    with sandbox_for(dialect) as sb:
        case = CASES[dialect](sb)
        config = case.config()
        args: tuple[str, ...] = ("--discover",)
        catalog = None
        if endpoint not in DISCOVERY_ENDPOINTS:
            args = ()
            catalog = select(discover(tmp_path, config), {"accounts": None})
        sb.settings.json_answers = {endpoint: answer}
        run = run_tap(tmp_path, config, *args, catalog=catalog)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (line,) = run.error_lines
    for word in words:
        assert word in line, line
    assert "replication key" not in line and "Check api_url" not in line
