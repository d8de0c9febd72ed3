"""A throw-away PostgreSQL server on 127.0.0.1 for storage tests (Debian's postgresql package).

`.ci/run` installs the package; elsewhere the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def available() -> str | None:
    """None when a server can be started here, else why not."""
    if not (_bin("initdb") and _bin("pg_ctl")):
        return "PostgreSQL server binaries not installed (apt-get install postgresql)"
    if not shutil.which("runuser"):
        return "runuser not found"
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres system user"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed (pip install -e '.[dev]')"
    return None


class Server:
    """initdb + pg_ctl in a temporary folder, trust auth, listening on 127.0.0.1 only."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ecomlab-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        data = self.dir / "data"
        self._as_postgres(_bin("initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._as_postgres(
            _bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start"
        )
        self.data = data

    def _as_postgres(self, *cmd: str | None) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *[c for c in cmd if c]],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def new_database(self) -> str:
        import psycopg

        name = "t" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._as_postgres(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        time.sleep(0.2)
        shutil.rmtree(self.dir, ignore_errors=True)
