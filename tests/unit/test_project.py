"""The project's files, read without running anything: the workflows pin actions by SHA and
publish by trusted publishing, the pre-commit hooks are local, and the tools the pipelines
run are the pinned ones the README installs.
"""

from __future__ import annotations

import re

import yaml

from tests.support.checkout import ROOT
from tests.support.readme import bash_blocks


def _workflows() -> dict[str, dict]:
    folder = ROOT / ".github" / "workflows"
    return {path.name: yaml.safe_load(path.read_text()) for path in folder.glob("*.yml")}


CONFIG = ROOT / ".pre-commit-config.yaml"


def _loader_pip_url(name: str) -> list[str]:
    """Return the packages meltano.yml pins for a loader (its pip_url, split)."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (loader,) = [p for p in project["plugins"]["loaders"] if p["name"] == name]
    return str(loader["pip_url"]).split()


def test_workflows_pin_actions_by_sha_and_only_read_the_repository():
    workflows = _workflows()
    assert {"test.yml", "release.yml"} <= set(workflows)
    for name, workflow in workflows.items():
        assert workflow["permissions"] == {"contents": "read"}, name
        for job_name, job in workflow["jobs"].items():
            extra = {k: v for k, v in job.get("permissions", {}).items() if v != "read"}
            if extra:  # only the release's publishing job may ask for more: its OIDC token
                assert (name, extra) == ("release.yml", {"id-token": "write"}), job_name
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step


def test_release_publishes_by_trusted_publishing_at_a_tag():
    release = _workflows()["release.yml"]
    assert release[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as True
    steps = [step for job in release["jobs"].values() for step in job["steps"]]
    (publish,) = [s for s in steps if s.get("uses", "").startswith("pypa/gh-action-pypi-publish@")]
    assert "password" not in publish.get("with", {})  # no API token: PyPI trusts the OIDC token
    assert any("scripts/build.sh" in step.get("run", "") for step in steps)


def test_every_hook_is_local_and_runs_through_uv():
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {hook["id"]: hook for hook in config["repos"][0]["hooks"]}
    assert set(hooks) == {
        "ruff-check",
        "ruff-format",
        "uv-lock",
        "check-meltano",
        "check-github-workflows",
    }
    for hook in hooks.values():
        assert hook["entry"].startswith("bash scripts/uv.sh "), hook["id"]
    assert "--builtin-schema vendor.meltano" in hooks["check-meltano"]["entry"]
    assert "--builtin-schema vendor.github-workflows" in hooks["check-github-workflows"]["entry"]


def test_tools_are_the_pinned_ones():
    """The pipelines above run what meltano.yml pins (parquet needs pyarrow in the target)."""
    packages = _loader_pip_url("target-postgres")
    assert packages[0].startswith("meltanolabs-target-postgres==")
    assert any(p.startswith("pyarrow==") for p in packages)
    assert _loader_pip_url("target-jsonl")[0].startswith("target-jsonl==")
    assert _loader_pip_url("target-duckdb") == ["target-duckdb==0.8.0", "duckdb==1.1.3"]


def test_readme_installs_the_pinned_loaders():
    """The pipx commands for the targets (docs/pipelines.md) carry meltano.yml's pins."""
    readme = "\n".join(bash_blocks())
    for loader in ("target-postgres", "target-duckdb"):
        package, *extras = _loader_pip_url(loader)
        wanted = f"pipx install '{package}'" + "".join(f" --preinstall '{e}'" for e in extras)
        assert wanted in readme, wanted
