"""The README's shell commands, read from its text, so that tests run them as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def bash_blocks() -> list[str]:
    """Return the content of every ```bash block of the README, in order."""
    text = README.read_text(encoding="utf-8")
    return re.findall(r"^```bash\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def block_starting(prefix: str, containing: str = "") -> str:
    """Return the one ```bash block that starts with ``prefix`` and contains ``containing``."""
    (block,) = [b for b in bash_blocks() if b.startswith(prefix) and containing in b]
    return block


def commands(block: str) -> list[str]:
    """Return the block's commands, one per line (continued lines joined)."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
