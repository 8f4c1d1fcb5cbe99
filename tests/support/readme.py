"""The shell commands of the README and the docs pages, read from their text, so that tests run
them as written.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def documents() -> list[Path]:
    """Return the README, then every page of docs/ by name."""
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def bash_blocks() -> list[str]:
    """Return the content of every ```bash block of the README and the docs pages, in order."""
    return [
        block
        for document in documents()
        for block in re.findall(
            r"^```bash\n(.*?)^```$",
            document.read_text(encoding="utf-8"),
            flags=re.MULTILINE | re.DOTALL,
        )
    ]


def block_starting(prefix: str, containing: str = "") -> str:
    """Return the one ```bash block that starts with ``prefix`` and contains ``containing``."""
    (block,) = [b for b in bash_blocks() if b.startswith(prefix) and containing in b]
    return block


def commands(block: str) -> list[str]:
    """Return the block's commands, one per line (continued lines joined)."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
