"""The service as separate processes, the way an operator runs it: `privacy` commands, the image's entrypoint,
servers on free ports with clean environments, and fresh PostgreSQL databases to run them on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

REPO = Path(__file__).resolve().parent.parent
# Where the installed `privacy` command lives (the venv running the tests).
BIN = Path(sys.executable).parent


def clean_environment(**settings: str) -> dict[str, str]:
    """An environment with none of the caller's PRIVACY_* or TEST_* variables: only what is given."""
    env = {key: os.environ[key] for key in ("HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT") if key in os.environ}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    return env | settings


def run(command: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Served:
    """A server process; its output (stdout and stderr) goes to `log`."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    address: str = "127.0.0.1"
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, path: str = "/readyz", *, status: int = 200, within: float = 60) -> httpx.Response:
        deadline = time.monotonic() + within
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited ({self.process.returncode}):\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(self.url + path, timeout=2)
                if response.status_code == status:
                    return response
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} did not answer {status} within {within} s:\n{self.output()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, as `docker stop` sends; the exit code."""
        if not self._stopped:
            self._stopped = True
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start(command: list[str], env: dict[str, str], cwd: Path, port: int) -> Served:
    log = cwd / f"server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
    return Served(process=process, port=port, log=log)


def write_receipt_key(path: Path) -> Path:
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.chmod(0o600)
    return path


# --- PostgreSQL -------------------------------------------------------------------------------------------------


def postgres_server() -> str | None:
    """The PostgreSQL server the suite runs on (TEST_DATABASE_URL), or None on a SQLite run."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    return url if url.startswith(("postgresql", "postgres:")) else None


def _admin(sql: str, server: str) -> None:
    async def go() -> None:
        engine = create_async_engine(make_url(server).set(drivername="postgresql+asyncpg", database="postgres"),
                                     isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(go())


@contextlib.contextmanager
def fresh_postgres_database(server: str) -> Iterator[str]:
    """An empty database on `server`, dropped afterwards; its URL (plain postgresql://, as operators write)."""
    name = f"privacy_fresh_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"', server)
    try:
        yield make_url(server).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', server)


# --- the image --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """What the Dockerfile says about running the image: its environment, entrypoint and command."""

    env: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]
    copies: dict[str, str]  # destination in the image → source in the repository

    def command(self, *args: str) -> list[str]:
        """`docker run IMAGE args...` as it runs here: the entrypoint, mapped back to the repository's file."""
        program, *options = self.entrypoint
        # An absolute path, or a name the image finds on its PATH (/usr/local/bin).
        destination = program if program in self.copies else next(
            d for d in self.copies if d.endswith("/" + program))
        return [str(REPO / self.copies[destination]), *options, *(args or self.cmd)]


def dockerfile(path: Path = REPO / "Dockerfile") -> Image:
    import json

    lines, current = [], ""
    for raw in path.read_text().splitlines():
        if not current and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            lines.append(current.strip())
            current = ""
    env: dict[str, str] = {}
    entrypoint: list[str] = []
    cmd: list[str] = []
    copies: dict[str, str] = {}
    for line in lines:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
        elif instruction == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif instruction == "CMD" and rest.startswith("["):
            cmd = json.loads(rest)
        elif instruction == "COPY" and not rest.startswith("--"):
            *sources, destination = rest.split()
            if len(sources) == 1 and (REPO / sources[0]).is_file():
                copies[destination] = sources[0]
    return Image(env=env, entrypoint=entrypoint, cmd=cmd, copies=copies)
