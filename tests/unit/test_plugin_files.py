"""meltano.yml, the Meltano Hub definition, the README's settings table and the settings page
agree with the tap's own settings (``tap-demandbase --about``): names, kinds, defaults,
sensitive flags; the docs pages' generated tables agree with their sources.
"""

from __future__ import annotations

import re

import pytest
import yaml

from scripts.plugin_files import GRAMMAR_END, GRAMMAR_START, STREAMS_PAGE
from tap_demandbase.records.kinds import Kind, grammar_markdown
from tests.support.checkout import ROOT


def test_loaders_install_without_the_hub():
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    for loader in project["plugins"]["loaders"]:
        assert "variant" not in loader, loader["name"]  # a variant means a Hub lookup
        assert loader["namespace"]
        assert loader["executable"]
        package = loader["pip_url"].split()[0]
        assert "==" in package, f"{loader['name']}: pin the loader's version"


def test_plugin_definition_header_adds_only_an_extractor():
    """`meltano add extractor X --from-ref` adds a utility X too (Meltano 4.4): the header's
    command names the type with --plugin-type, as the README does.
    """
    header = (ROOT / "plugin-definition.yml").read_text(encoding="utf-8").split("\nname:")[0]
    assert "#   meltano add --plugin-type extractor tap-demandbase --from-ref" in header
    assert "meltano add extractor tap-demandbase" not in header


def test_docs_value_grammar_is_generated_from_the_kinds():
    page = STREAMS_PAGE.read_text(encoding="utf-8")
    block = page.split(GRAMMAR_START + "\n")[1].split(GRAMMAR_END)[0]
    assert block == grammar_markdown(), "run: python scripts/plugin_files.py"
    for kind in Kind:
        assert f"| {kind.value} | " in block
    number = next(line for line in block.splitlines() if line.startswith("| number |"))
    assert Kind.NUMBER.grammar and Kind.NUMBER.grammar.replace("|", r"\|") in number


def test_secrets_and_meltano_state_are_git_ignored():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored
    assert ".meltano/" in ignored


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


def test_readme_links_into_docs_reach_a_page():
    """The README's links into docs/ (mkdocs --strict checks the pages' own links)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs/|CONTRIBUTING)[^)#]*)(?:#[^)]*)?\)", readme)
    assert len(links) > 8
    for link in links:
        assert (ROOT / link).is_file(), link
