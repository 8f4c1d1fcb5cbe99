"""meltano.yml, the Meltano Hub definition and the README's settings reference agree with the
tap's own settings (``tap-demandbase --about``): names, kinds, defaults, sensitive flags; the docs
pages' generated tables agree with their sources.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.plugin_files import GRAMMAR_END, GRAMMAR_START, STREAMS_PAGE
from tap_demandbase.records.kinds import Kind, grammar_markdown
from tests.support.tap import TAP

ROOT = Path(__file__).resolve().parents[1]

#: JSON Schema type → the Meltano kind it must be declared with.
KINDS = {
    "integer": "integer",
    # Fractions: `integer` makes `meltano config set ... 0.5` fail, and Meltano 4.4 cannot hand a
    # `decimal` read from the environment to the plugin (scripts/plugin_files.py, _KINDS).
    "number": "string",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
    "string": "string",
}


@pytest.fixture(scope="module")
def about() -> dict:
    done = subprocess.run(
        [TAP, "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def _expected_kind(prop: dict) -> str:
    if "oneOf" in prop:
        return "object" if any(c["type"] == "object" for c in prop["oneOf"]) else "string"
    types = [k for k in prop["type"] if k != "null"]
    if types == ["string"] and prop.get("format") == "date-time":
        return "date_iso8601"
    return KINDS[types[0]]


def _check_settings(declared: list[dict], about: dict) -> None:
    """Every setting of the tap is declared with its kind, default and sensitivity."""
    properties = about["settings"]["properties"]
    assert [s["name"] for s in declared] == list(properties)
    for setting in declared:
        prop = properties[setting["name"]]
        name = setting["name"]
        assert setting["kind"] == _expected_kind(prop), name
        assert setting.get("value") == prop.get("default"), name
        assert setting.get("sensitive", False) == bool(prop.get("secret")), name
        assert setting["label"], name
        assert setting["kind"] != "password", "deprecated kind: use sensitive: true"


def test_generated_files_are_up_to_date():
    done = subprocess.run(
        [sys.executable, "scripts/plugin_files.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout


def test_meltano_yml_declares_every_setting_with_its_kind_and_default(about):
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    assert "version" not in project  # deprecated: Meltano warns on every command
    (extractor,) = project["plugins"]["extractors"]
    _check_settings(extractor["settings"], about)
    hub = yaml.safe_load((ROOT / "plugin-definition.yml").read_text(encoding="utf-8"))
    assert extractor["pip_url"] == hub["pip_url"]  # no release on PyPI yet: from GitHub
    assert set(about["capabilities"]) <= set(extractor["capabilities"])
    assert {"catalog", "discover", "state"} <= set(extractor["capabilities"])
    numeric = {s["name"]: s["kind"] for s in extractor["settings"]}
    for fractional in (
        "poll_interval_seconds",
        "max_poll_interval_seconds",
        "job_retry_cooldown_seconds",
        "job_timeout_seconds",
        "download_stall_seconds",
    ):
        assert numeric[fractional] == "string", fractional


@pytest.mark.unit
def test_loaders_install_without_the_hub():
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    for loader in project["plugins"]["loaders"]:
        assert "variant" not in loader, loader["name"]  # a variant means a Hub lookup
        assert loader["namespace"]
        assert loader["executable"]
        package = loader["pip_url"].split()[0]
        assert "==" in package, f"{loader['name']}: pin the loader's version"


def test_hub_definition_matches_about(about):
    hub = yaml.safe_load((ROOT / "plugin-definition.yml").read_text(encoding="utf-8"))
    assert hub["name"] == hub["executable"] == about["name"]
    assert hub["namespace"] == "tap_demandbase"
    # No release is on PyPI yet: "tap-demandbase" would not install (CONTRIBUTING.md, Releasing).
    assert hub["pip_url"] == f"git+{hub['repo']}.git"
    assert hub["docs"].startswith("https://")
    assert hub["repo"].startswith("https://")
    assert hub["label"]
    assert hub["description"]
    assert "meltano_sdk" in hub["keywords"]
    assert set(about["capabilities"]) <= set(hub["capabilities"])
    assert hub["settings_group_validation"] == [about["settings"]["required"]]
    _check_settings(hub["settings"], about)


@pytest.mark.unit
def test_plugin_definition_header_adds_only_an_extractor():
    """`meltano add extractor X --from-ref` adds a utility X too (Meltano 4.4): the header's
    command names the type with --plugin-type, as the README does.
    """
    header = (ROOT / "plugin-definition.yml").read_text(encoding="utf-8").split("\nname:")[0]
    assert "#   meltano add --plugin-type extractor tap-demandbase --from-ref" in header
    assert "meltano add extractor tap-demandbase" not in header


def test_readme_shows_about_markdown():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- >>> generated by scripts/plugin_files.py")[1]
    block = block.split("<!-- <<< end of generated settings -->")[0]
    markdown = subprocess.run(
        [TAP, "--about", "--format=markdown"], capture_output=True, text=True, check=True
    ).stdout
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(rows) > 20
    for row in rows:
        assert row in block, row


@pytest.mark.unit
def test_docs_value_grammar_is_generated_from_the_kinds():
    page = STREAMS_PAGE.read_text(encoding="utf-8")
    block = page.split(GRAMMAR_START + "\n")[1].split(GRAMMAR_END)[0]
    assert block == grammar_markdown(), "run: python scripts/plugin_files.py"
    for kind in Kind:
        assert f"| {kind.value} | " in block
    number = next(line for line in block.splitlines() if line.startswith("| number |"))
    assert Kind.NUMBER.grammar and Kind.NUMBER.grammar.replace("|", r"\|") in number


@pytest.mark.unit
def test_secrets_and_meltano_state_are_git_ignored():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored
    assert ".meltano/" in ignored


@pytest.mark.unit
@pytest.mark.parametrize(
    "page", ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("docs/*.md"))]
)
def test_headings_are_each_said_once(page):
    """Two headings of the same words (a "Settings" section holding a "Settings" reference)
    leave a reader, and a table of contents, unable to tell them apart.
    """
    headings, fenced = [], False
    for line in (ROOT / page).read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if line.startswith("#") and not fenced:
            headings.append(line.lstrip("#").strip())
    repeated = sorted({h for h in headings if headings.count(h) > 1})
    assert not repeated, repeated


@pytest.mark.unit
def test_readme_links_into_docs_reach_a_page():
    """The README's links into docs/ (mkdocs --strict checks the pages' own links)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs/|CONTRIBUTING)[^)#]*)(?:#[^)]*)?\)", readme)
    assert len(links) > 8
    for link in links:
        assert (ROOT / link).is_file(), link
