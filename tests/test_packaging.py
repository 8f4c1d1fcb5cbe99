"""The package as PyPI gets it: built by scripts/build.sh (uv build, then twine check --strict),
with the metadata, entry points and files a user's install needs.
"""

from __future__ import annotations

import email
import subprocess
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_build_passes_twine_check_and_ships_what_an_install_needs(tmp_path):
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    assert sdist.name.startswith("tap_demandbase-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert metadata["Name"] == "tap-demandbase"
    assert metadata["Version"] != "0.0.0"  # from the git history (hatch-vcs), not the fallback
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "singer-sdk" in " ".join(metadata.get_all("Requires-Dist") or [])
    assert "tap-demandbase = tap_demandbase.tap:TapDemandbase.cli" in scripts
    assert "demandbase-sandbox = tap_demandbase.sandbox.cli:main" in scripts
    assert "tap_demandbase/dialects/export_v1.py" in names
    assert "tap_demandbase/engine/export.py" in names
    assert not [n for n in names if n.startswith("tests/")]
