"""A throwaway PostgreSQL server for the warehouse tests, started and removed by the tests.

The server lives in a temporary folder, listens on a free port of 127.0.0.1 only, trusts local
connections and skips fsync: it holds nothing worth keeping. ``initdb`` refuses to run as root,
so as root the server runs as a system user created here (``tap-demandbase-pg``). The binaries
come from the machine (``/usr/lib/postgresql/15/bin``; ``.ci/run`` installs ``postgresql-15``
with apt when they are absent).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_USER = "tap-demandbase-pg"
#: Where the binaries are looked for, first found wins (PG_BIN overrides).
PG_BIN_DIRS = (
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
)


def postgres_bin() -> Path | None:
    """Return the folder holding initdb, pg_ctl and psql, or None when there is none."""
    for folder in (os.environ.get("PG_BIN"), *PG_BIN_DIRS):
        if folder and all((Path(folder) / tool).exists() for tool in ("initdb", "pg_ctl", "psql")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayPostgres:
    """One PostgreSQL server: ``start()``, ``sql(...)``, ``url``, then ``stop()``."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tap-demandbase-pg-"))
        self.data = self.root / "data"
        self._as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        """Return the SQLAlchemy URL target-postgres connects with."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> ThrowawayPostgres:
        if self._as_root:
            self._ensure_user()
            shutil.chown(self.root, PG_USER)
        self._run_as_owner(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run_as_owner(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        return self

    def stop(self) -> None:
        """Stop the server at once and delete its data."""
        if self.data.exists():
            subprocess.run(
                [
                    *self._owner_prefix(),
                    *(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"),
                ],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def sql(self, query: str) -> list[list[str]]:
        """Return the rows of a query (each a list of text cells) run by psql."""
        done = subprocess.run(
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-AtF",
                "\t",
                "-c",
                query,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return [line.split("\t") for line in done.stdout.splitlines()]

    def server_version(self) -> str:
        return self.sql("SHOW server_version")[0][0]

    def _owner_prefix(self) -> list[str]:
        return ["runuser", "-u", PG_USER, "--"] if self._as_root else []

    def _run_as_owner(self, *command: str) -> None:
        done = subprocess.run(
            self._owner_prefix() + list(command), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            log = self.root / "server.log"
            server_log = log.read_text() if log.exists() else ""
            msg = f"{command[0]} failed: {done.stdout}{done.stderr}{server_log}"
            raise RuntimeError(msg)

    @staticmethod
    def _ensure_user() -> None:
        known = subprocess.run(["id", "-u", PG_USER], capture_output=True, check=False)
        if known.returncode != 0:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    PG_USER,
                ],
                check=True,
            )
