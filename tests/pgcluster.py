"""A private PostgreSQL cluster for fault tests: `initdb` in a temporary folder, a server on a free port of
127.0.0.1 with trust authentication, that a test may stop, kill, restart and freeze (SIGSTOP) at will, which
it must never do to the shared server of TEST_DATABASE_URL.

    from tests import pgcluster

    pytestmark = pgcluster.needs_cluster
    pg_cluster = pgcluster.pg_cluster  # the fixture, in this module

    def test_x(pg_cluster: Cluster) -> None:
        url = pg_cluster.database("app")       # a fresh database on it, migrated if asked
        pg_cluster.restart(mode="immediate")   # a crash: the postmaster and its children quit at once
        with pg_cluster.frozen(): ...          # a hung server: every process SIGSTOPped

PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` system user (created as
`pgfault` when there is none). The tests that use it cost seconds each: they run in the PostgreSQL run of the
suite (TEST_DATABASE_URL set, as .ci/run's second pass) or with PRIVACY_FAULT_TESTS=1, and are skipped where
the PostgreSQL server binaries are missing."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

StopMode = Literal["smart", "fast", "immediate"]


def binaries() -> Path | None:
    """The folder of initdb/pg_ctl/postgres: PG_BINDIR, Debian's /usr/lib/postgresql/N/bin, or PATH."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(debian, key=lambda p: int(p.split("/")[-2]), reverse=True)
    if found := shutil.which("initdb"):
        candidates.append(str(Path(found).parent))
    for folder in filter(None, candidates):
        if all((Path(folder) / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def wanted() -> bool:
    """Whether this run has the fault tests: the PostgreSQL run, or asked for with PRIVACY_FAULT_TESTS=1."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    return url.startswith(("postgresql", "postgres:")) or os.environ.get("PRIVACY_FAULT_TESTS") == "1"


def _skip_reason() -> str:
    if not wanted():
        return "fault tests run in the PostgreSQL run (TEST_DATABASE_URL) or with PRIVACY_FAULT_TESTS=1"
    if binaries() is None:
        return "the PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    return ""


needs_cluster = pytest.mark.skipif(bool(_skip_reason()), reason=_skip_reason() or "-")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: None (ourselves) unless we are root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgfault"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "pgfault"],
                   check=True, capture_output=True)
    return pwd.getpwnam("pgfault")


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: the postmaster's backends and auxiliary processes)."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
            fields = Path(stat).read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid:
                found.append(int(stat.split("/")[2]))
    return found


class Cluster:
    """One private PostgreSQL cluster. `start()` brings it up (initdb the first time); `close()` kills it and
    removes its folder, whatever state it is in."""

    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        bindir = binaries()
        if bindir is None:
            raise RuntimeError("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bindir = bindir
        self.folder = Path(folder or tempfile.mkdtemp(prefix="pgcluster-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = port or _free_port()
        self.user = _server_user()
        self._frozen: list[int] = []
        if self.user is not None:
            os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
        self.folder.chmod(0o700)

    # --- running commands as the server's user ------------------------------------------------------------

    def _run(self, *command: str, timeout: float = 60, check: bool = True
             ) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {"PATH": f"{self.bindir}:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": str(self.folder)}
        result = subprocess.run([str(self.bindir / command[0]), *command[1:]], env=env, cwd=self.folder,
                                capture_output=True, text=True, timeout=timeout, check=False,
                                **kwargs)  # type: ignore[call-overload]
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}\n--- server log ---\n{self.server_log()}")
        return result

    def server_log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-4000:]
        return ""

    # --- life cycle ---------------------------------------------------------------------------------------

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.folder}'",
            "max_connections": "100",
            "shared_buffers": "16MB",
            # Durable against a crash of the server's processes (what the fault tests do), not of the machine:
            # commits still write their WAL to the kernel before they are acknowledged.
            "fsync": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/pgcluster.py\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))

    def start(self, timeout: float = 60) -> None:
        if not (self.data / "PG_VERSION").exists():
            self.init()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(timeout)), "start",
                  timeout=timeout + 10)

    def stop(self, mode: StopMode = "fast", timeout: float = 60) -> None:
        """pg_ctl stop: `fast` rolls back and disconnects every client; `immediate` is a crash (recovery on
        the next start)."""
        self.thaw()
        if self.pid() is None:
            return
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(int(timeout)), "stop",
                  timeout=timeout + 10)

    def restart(self, mode: StopMode = "fast") -> None:
        self.stop(mode)
        self.start()

    def kill(self) -> None:
        """SIGKILL to the postmaster and its children: nothing of the server keeps running."""
        pid = self.pid()
        if pid is None:
            return
        for process in [pid, *_children(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self._alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        # A killed postmaster cannot remove its lock files, and while nobody reaps it (its parent, pg_ctl,
        # is gone) its pid stays taken, so the next one would take it for a live server: they go here.
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        for lock in (f".s.PGSQL.{self.port}.lock", f".s.PGSQL.{self.port}"):
            (self.folder / lock).unlink(missing_ok=True)

    def freeze(self) -> None:
        """SIGSTOP to the postmaster, then to each of its children: the server hangs, connections stay open
        and nothing answers (a hung disk, a VM paused)."""
        pid = self.pid()
        if pid is None or self._frozen:
            return
        os.kill(pid, signal.SIGSTOP)  # first, so that it forks no child we would miss
        self._frozen = [pid]
        for child in _children(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGSTOP)
                self._frozen.append(child)

    def thaw(self) -> None:
        """SIGCONT to every process freeze() stopped, children first."""
        for process in reversed(self._frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process, signal.SIGCONT)
        self._frozen = []

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        self.freeze()
        try:
            yield
        finally:
            self.thaw()

    def close(self) -> None:
        """Stop it however it can be stopped, and remove its folder."""
        self.thaw()
        with contextlib.suppress(Exception):
            self.stop("immediate", timeout=10)
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- state ----------------------------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            if self._alive(pid):
                return pid
        return None

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
                return False
        return True

    @property
    def url(self) -> str:
        """The `postgres` database, as operators write URLs (postgresql://, no driver)."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql (as the server's user, over TCP); its output, unaligned and without headers."""
        return self._run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                         str(self.port), "-U", "postgres", "-d", database, "-c", sql).stdout.strip()

    def database(self, name: str, *, migrated: bool = False) -> str:
        """A new database on the cluster (its URL); with `migrated`, upgraded to the newest migration."""
        self.psql(f'CREATE DATABASE "{name}"')
        url = self.url_for(name)
        if migrated:
            from app.core import migrate

            migrate.upgrade(url)
        return url


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[Cluster]:
    """A private cluster for the test module, running; killed and removed afterwards, whatever happened."""
    if reason := _skip_reason():
        pytest.skip(reason)
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
