"""What the benches that run the service as a process of its own and write consent to it share
(bench/faults.py, bench/sqlite_writers.py): a free port, a staff token, the service started on a database and
waited for, a client, and the subjects its writers write for. Import it after ROOT is on sys.path."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def staff_token() -> str:
    """A development token for staff that may create subjects and read and write their consent."""
    from app.core.config import Settings
    from app.core.security import mint_token

    return mint_token(
        Settings(env="development"),
        role="staff",
        sub="bench",
        scopes=["subjects:write", "consents:read", "consents:write"],
    )


@contextlib.contextmanager
def serving(command: list[str], *, port: int, database_url: str, folder: Path, ready: str) -> Iterator[str]:
    """Run `command` (the service, listening on `port`) in `folder` on `database_url`, with development
    settings, until the block ends; yield its URL once `ready` (a path) answers 200. Its output goes to
    folder/server.log, shown if it does not start within 60 s."""
    env = {
        **os.environ,
        "PRIVACY_ENV": "development",
        "PRIVACY_DATABASE_URL": database_url,
        "PRIVACY_RECEIPT_KEY_FILE": str(folder / "receipt.pem"),
        "PRIVACY_LOG_LEVEL": "WARNING",
        "PRIVACY_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PRIVACY_METRICS_DIR": str(folder / "metrics"),
        "PYTHONPATH": str(ROOT),
    }
    with (folder / "server.log").open("wb") as output:
        server = subprocess.Popen(command, env=env, cwd=folder, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}{ready}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{(folder / 'server.log').read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def client(url: str, token: str, writers: int) -> httpx.AsyncClient:
    """A client for `writers` concurrent writers (and a few more connections), signed in with `token`."""
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        limits=httpx.Limits(max_connections=writers + 4),
    )


async def new_subjects(http: httpx.AsyncClient, count: int, *, prefix: str, name: str) -> list[str]:
    """The ids of `count` new subjects, one a writer, with addresses no earlier run used."""
    subjects = []
    for number in range(count):
        response = await http.post(
            "/v1/subjects",
            json={"email": f"{prefix}{number}.{time.time_ns()}@example.se", "name": name},
        )
        response.raise_for_status()
        subjects.append(response.json()["id"])
    return subjects
