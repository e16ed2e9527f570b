"""The receipt key file, created on first use outside production (item 22 of issue 17): workers starting at
the same time race to create it, and every one of them must end up with the same, complete key."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.core.config import ConfigError
from app.core.signing import ReceiptSigner
from tests.processes import REPO

ROUNDS = 40  # fresh files per racer: each is a new race


def _race_threads(folder: Path, racers: int) -> list[list[str]]:
    """`racers` threads, each loading the key of the same fresh file per round, released together."""
    barrier = threading.Barrier(racers)

    def racer(_number: int) -> list[str]:
        kids = []
        for round_ in range(ROUNDS):
            barrier.wait()
            try:
                kids.append(ReceiptSigner.load(folder / f"key-{round_}.pem", create=True).kid)
            except ConfigError as error:
                kids.append(f"error: {error}")
        return kids

    with ThreadPoolExecutor(racers) as pool:
        return list(pool.map(racer, range(racers)))


# Each process waits for a start file, then loads the key of every round's file as fast as it can.
_RACER = """
import sys, time
from pathlib import Path
from app.core.config import ConfigError
from app.core.signing import ReceiptSigner
folder, rounds = Path(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
while not (folder / "go").exists():
    time.sleep(0.001)
for round_ in range(rounds):
    try:
        print(ReceiptSigner.load(folder / f"key-{round_}.pem", create=True).kid, flush=True)
    except ConfigError as error:
        print("error:", error, flush=True)
"""


def _race_processes(folder: Path, racers: int) -> list[list[str]]:
    processes = [
        subprocess.Popen([sys.executable, "-c", _RACER, str(folder), str(ROUNDS)], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(racers)
    ]
    # Once every process has imported the app (the slow part) and waits, start them at once.
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    (folder / "go").touch()
    return [process.communicate(timeout=60)[0].splitlines() for process in processes]


@pytest.mark.parametrize(("how", "racers"), [("threads", 8), ("threads", 32), ("processes", 4)])
def test_racing_creators_all_read_the_same_complete_key(tmp_path: Path, how: str, racers: int) -> None:
    results = (_race_threads if how == "threads" else _race_processes)(tmp_path, racers)
    for round_ in range(ROUNDS):
        seen = {kids[round_] if round_ < len(kids) else "no answer" for kids in results}
        assert len(seen) == 1 and not next(iter(seen)).startswith(("error", "no answer")), (round_, seen)
        key = tmp_path / f"key-{round_}.pem"
        assert ReceiptSigner.load(key, create=False).kid in seen
        assert key.stat().st_mode & 0o777 == 0o600
    # No temporary file is left behind, whoever lost.
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("key-") and p.name != "go"] == []


def test_an_existing_key_is_kept(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    first = ReceiptSigner.load(key, create=True)
    assert ReceiptSigner.load(key, create=True).kid == first.kid
    assert ReceiptSigner.load(key, create=False).kid == first.kid


@pytest.mark.parametrize("content", [b"", b"-----BEGIN PRIVATE KEY-----\nMIGH", b"not a key", os.urandom(64)])
def test_a_broken_key_file_is_a_configuration_error_not_replaced(tmp_path: Path, content: bytes) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(content)
    with pytest.raises(ConfigError):
        ReceiptSigner.load(key, create=True)
    assert key.read_bytes() == content
