"""``demandbase-sandbox``: run the emulator in the foreground for demos, dry runs and benchmarks.

Prints one line with the API URL and token, writes the API URL to ``--ready-file`` once both
servers listen (so a script can wait for the file instead of sleeping), and stops cleanly on
SIGINT or SIGTERM. Every other knob can be changed at runtime with ``POST /_sandbox/settings``.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from tap_demandbase.sandbox.entities import ENTITIES
from tap_demandbase.sandbox.server import Sandbox
from tap_demandbase.sandbox.settings import SandboxSettings


def _rows(text: str) -> tuple[str, int]:
    entity, sep, count = text.partition("=")
    if not sep or entity not in ENTITIES or not count.isdigit():
        raise argparse.ArgumentTypeError(
            f"expected ENTITY=COUNT with ENTITY one of {', '.join(ENTITIES)}, got {text!r}"
        )
    return entity, int(count)


def build_parser() -> argparse.ArgumentParser:
    """Return the command's argument parser."""
    defaults = SandboxSettings()
    parser = argparse.ArgumentParser(
        prog="demandbase-sandbox",
        description="Run a local emulator of the Demandbase Data Export API.",
    )
    parser.add_argument("--port", type=int, default=8734, help="API port (default 8734)")
    parser.add_argument("--files-port", type=int, default=0, help="download host port (0: any)")
    parser.add_argument("--token", default=defaults.token, help="bearer token the API accepts")
    parser.add_argument(
        "--rows",
        type=_rows,
        action="append",
        default=[],
        metavar="ENTITY=COUNT",
        help="rows of an entity, repeatable (e.g. --rows accounts=200000)",
    )
    parser.add_argument("--rows-per-part", type=int, default=defaults.rows_per_part)
    parser.add_argument("--pending-seconds", type=float, default=defaults.pending_seconds)
    parser.add_argument("--processing-seconds", type=float, default=defaults.processing_seconds)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--ready-file", type=Path, help="write the API URL here once listening")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGINT/SIGTERM; return the exit status."""
    args = build_parser().parse_args(argv)
    settings = SandboxSettings(
        token=args.token,
        port=args.port,
        files_port=args.files_port,
        rows_per_part=args.rows_per_part,
        pending_seconds=args.pending_seconds,
        processing_seconds=args.processing_seconds,
        seed=args.seed,
    )
    settings.rows.update(dict(args.rows))
    try:
        settings.validate()
    except ValueError as exc:
        build_parser().error(str(exc))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with Sandbox(settings) as sandbox:
        print(
            f"Demandbase sandbox API at {sandbox.api_url} (token: {sandbox.token}), "
            f"downloads at {sandbox.files_url}",
            flush=True,
        )
        if args.ready_file is not None:
            temporary = args.ready_file.with_name(args.ready_file.name + ".tmp")
            temporary.write_text(sandbox.api_url + "\n", encoding="utf-8")
            os.replace(temporary, args.ready_file)  # atomic: a watcher never reads half a URL
        while not stop.wait(0.5):
            pass
    return 0
