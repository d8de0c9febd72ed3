"""A throw-away MariaDB (MySQL) server on 127.0.0.1 for storage tests (Debian's mariadb-server package).

`.ci/run` installs the package; elsewhere the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def _mariadbd() -> str | None:
    """Debian puts the server in /usr/sbin, which is not always on PATH."""
    return shutil.which("mariadbd") or (
        "/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").is_file() else None
    )


def available() -> str | None:
    """None when a server can be started here, else why not."""
    if not _mariadbd() or not shutil.which("mariadb-install-db"):
        return "MariaDB server binaries not installed (apt-get install mariadb-server)"
    try:
        import pwd

        pwd.getpwnam("mysql")
    except KeyError:
        return "no mysql system user"
    try:
        import pymysql  # noqa: F401
    except ImportError:
        return "pymysql not installed (pip install -e '.[dev]')"
    return None


class Server:
    """mariadb-install-db + mariadbd in a temporary folder, root without a password, 127.0.0.1 only."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ecomlab-mysql-"))
        shutil.chown(self.dir, "mysql", "mysql")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        data = self.dir / "data"
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.proc = subprocess.Popen(
            [
                str(_mariadbd()),
                "--no-defaults",
                "--user=mysql",
                f"--datadir={data}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.dir / 'sock'}",
                f"--pid-file={self.dir / 'pid'}",
                "--skip-name-resolve",
                "--max-connections=200",
                f"--log-error={self.dir / 'log'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while True:
            try:
                self._connect().close()
                break
            except Exception:
                if time.time() > deadline or self.proc.poll() is not None:
                    log = (
                        (self.dir / "log").read_text(errors="replace")[-2000:]
                        if (self.dir / "log").exists()
                        else ""
                    )
                    self.stop()
                    raise RuntimeError(f"MariaDB did not start:\n{log}") from None
                time.sleep(0.3)

    def _connect(self):  # type: ignore[no-untyped-def]
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True)

    def new_database(self) -> str:
        name = "t" + uuid.uuid4().hex[:12]
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {name}")
        finally:
            conn.close()
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)
