"""A real PostgreSQL server on loopback, from Debian's packages, for the HA tests' hub database.

Two hub replicas cannot share a sqlite file (two pods never share one), so the
hubs of the failover tests run on PostgreSQL as a z2jh deployment with
``hub.db.type: postgres`` does. The server is Debian's ``postgresql-15``
(``/usr/lib/postgresql/15/bin``; ``scripts/install.sh`` installs it):

- its own data directory in a fresh temporary directory, ``initdb -A trust``;
- listening on 127.0.0.1 and a free port only, its unix socket in that directory;
- run as the user ``postgres`` when the tests run as root (PostgreSQL refuses
  to run as root), through ``runuser``;
- stopped (``pg_ctl stop -m immediate``) and its directory removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.support.redis_server import free_port

POSTGRES_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


def postgres_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are, or None when PostgreSQL is not installed."""
    for candidate in (os.environ.get("KUBECACHE_TEST_PG_BIN"), *POSTGRES_BIN_DIRS):
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


class PostgresServer:
    """One PostgreSQL cluster (data directory + server process) of a test."""

    def __init__(self, bin_dir: Path, *, user: str = "postgres") -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.as_other_user = os.geteuid() == 0
        self.os_user = user if self.as_other_user else pwd.getpwuid(os.geteuid()).pw_name
        self.dir = Path(tempfile.mkdtemp(prefix="kubecache-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        if self.as_other_user:
            entry = pwd.getpwnam(user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.started = False

    def _run(self, argv: Sequence[str], timeout: float = 120) -> None:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self.as_other_user:
            command = ["runuser", "-u", self.os_user, "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.dir, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({result.returncode}): "
                f"{result.stdout}{result.stderr}\n{log}"
            )

    def start(self) -> None:
        self._run(["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"])
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            [
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        self.started = True

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg2) of ``database`` as the superuser ``postgres``."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name``; its SQLAlchemy URL."""
        import psycopg2  # the test environment's psycopg2-binary

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"], 60)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)
