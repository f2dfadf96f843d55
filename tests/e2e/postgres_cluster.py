"""A PostgreSQL 15 cluster of a test's own, which it may crash and restart at will.

The other PostgreSQL tests share the machine's cluster (127.0.0.1:5432) and run in parallel: a
test that restarts PostgreSQL must never restart that one. This one lives in a temporary
directory, listens on a free port of 127.0.0.1 and has its own socket directory. PostgreSQL
refuses to run as root, so under root its programs run as the `postgres` user, which owns the
directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.e2e.harness import free_port

#: Where Debian and Ubuntu's postgresql-15 package puts initdb, pg_ctl and postgres.
BIN = Path(os.environ.get("CONNECTOR_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
#: The user PostgreSQL runs as when the tests run as root.
SERVER_USER = "postgres"
#: pg_ctl's wait for a start or stop; a loaded 2-core machine needs more than its default 60 s.
PG_CTL_WAIT_SECONDS = 90

#: Settings for speed: no fsync (the operating system keeps what a crash of PostgreSQL's own
#: processes leaves, which is all a `-m immediate` stop is), a small footprint. Commits stay
#: synchronous: the connector's 202 promises that what it acknowledged survives the crash.
CONFIG = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
fsync = off
full_page_writes = off
synchronous_commit = on
shared_buffers = 16MB
max_connections = 100
logging_collector = off
"""


class ClusterError(Exception):
    """The private cluster could not be made, started or stopped; the message says why."""


class PostgresCluster:
    """A throwaway PostgreSQL cluster: init, start, crash (stop -m immediate), stop, remove."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="connector-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.as_server_user = os.geteuid() == 0
        if self.as_server_user:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise ClusterError(f"running as root and there is no {SERVER_USER} user") from None
            os.chown(self.directory, user.pw_uid, user.pw_gid)

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its `postgres` database over TCP."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        """Make the cluster (trust authentication: it only listens on 127.0.0.1) and start it."""
        if not (BIN / "initdb").exists():
            raise ClusterError(
                f"no PostgreSQL 15 programs in {BIN} (set CONNECTOR_TEST_POSTGRES_BIN)"
            )
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(CONFIG.format(port=self.port, sockets=self.directory))
        self.start()

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        self._pg_ctl("start", "-l", str(self.log))

    def crash(self) -> None:
        """Stop the server at once, as a crash would (no checkpoint; recovery at the next start)."""
        self._pg_ctl("stop", "-m", "immediate")

    def remove(self) -> None:
        """Stop the server if it runs (by its pid, should pg_ctl fail) and delete the directory."""
        try:
            if self.running():
                self.crash()
        except ClusterError:
            pid = self._postmaster_pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def running(self) -> bool:
        """Whether a postmaster of this cluster runs."""
        pid = self._postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def log_tail(self, lines: int = 20) -> str:
        """The server log's last lines, to explain a failure."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no server log: {e})"

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", str(PG_CTL_WAIT_SECONDS), *args)

    def _run(self, program: str, *args: str) -> None:
        command = [str(BIN / program), *args]
        if self.as_server_user:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        try:
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
                cwd=self.directory,
                timeout=PG_CTL_WAIT_SECONDS + 30,
            )
        except (OSError, subprocess.SubprocessError) as e:
            output = getattr(e, "stderr", "") or getattr(e, "stdout", "") or ""
            raise ClusterError(
                f"{program} {' '.join(args[:2])} failed: {e}\n{output}\n{self.log_tail()}"
            ) from e
