"""Signed checkpoints of every audit chain's head, kept outside the database: the registry of chains.

The log is one file of JSON lines, `audit-checkpoints.jsonl` in PRIVACY_AUDIT_CHECKPOINT_DIR, only ever
appended to. Each line is one checkpoint:

    {"v": 1, "n": 3, "at": "2026-11-29T05:00:00+00:00", "key_id": "k1", "prev": "<mac of line n-1>",
     "chains": 1042, "digest": "<sha256 of every head>", "heads": {"<chain>": [seq, "<hash>"], ...},
     "mac": "<HMAC-SHA256>"}

`heads` holds the chains whose head moved since the previous checkpoint (every chain in the first); replayed
in order, the lines give every chain's head as of the last checkpoint, which `digest` (SHA-256 over the sorted
lines "chain seq hash") sums up. `mac` is the HMAC-SHA256, under the audit key `key_id`, of the line's
canonical JSON without `mac` (sorted keys, no spaces); `prev` links each line to the one before it (64 zeros
for the first), so a line taken out of the middle or edited is noticed.

A line is appended whole: under an exclusive lock on the file (one writer at a time), in a single write of
the complete line, then fsync. A line cut short by a crash is not JSON; a reader skips it (and says so), and
the next writer starts on a new line after it."""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

FILE_NAME = "audit-checkpoints.jsonl"
VERSION = 1
GENESIS = "0" * 64

Heads = dict[str, tuple[int, str]]


class CheckpointRefused(RuntimeError):
    """The database's heads contradict the last checkpoint (a chain moved back or went missing): nothing is
    written, and the message says which."""


def digest(heads: Mapping[str, tuple[int, str]]) -> str:
    lines = "".join(f"{chain} {seq} {head_hash}\n" for chain, (seq, head_hash) in sorted(heads.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(
        {k: v for k, v in body.items() if k != "mac"}, sort_keys=True, separators=(",", ":")
    ).encode()


def sign(body: dict[str, Any], key: bytes) -> dict[str, Any]:
    return body | {"mac": hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()}


@dataclass
class LogState:
    """The checkpoint log replayed: every chain's head at the last checkpoint, the heads the first one sealed
    (how far unkeyed, pre-migration events may go), the last line, and what was wrong with the file."""

    heads: Heads = field(default_factory=dict)
    first: Heads = field(default_factory=dict)
    count: int = 0
    last_mac: str = GENESIS
    last_at: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class CheckpointLog:
    def __init__(self, directory: Path, keyring: Mapping[str, bytes]) -> None:
        self.path = Path(directory) / FILE_NAME
        self.keyring = keyring

    def read(self) -> LogState:
        state = LogState()
        if not self.path.exists():
            return state
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except ValueError:
                # A write cut short by a crash (the next writer starts a line of its own after it). Skipping
                # it hides nothing: the next checkpoint links to the last whole one (`prev`).
                state.warnings.append(
                    f"{self.path}, line {number}: an incomplete checkpoint (a write cut short), skipped"
                )
                continue
            try:
                self._apply(state, body, f"{self.path}, line {number}")
            except (KeyError, TypeError, ValueError, AttributeError):
                state.problems.append(f"{self.path}, line {number}: not a checkpoint (fields missing)")
            if state.problems:
                break
        return state

    def _apply(self, state: LogState, body: dict[str, Any], where: str) -> None:
        key = self.keyring.get(str(body.get("key_id")))
        if key is None:
            state.problems.append(
                f"{where}: signed with audit key id {body.get('key_id')!r}, which is not configured"
            )
            return
        mac = hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, str(body.get("mac", ""))):
            state.problems.append(f"{where}: its MAC does not match (the checkpoint was altered)")
            return
        if body.get("v") != VERSION or body.get("n") != state.count + 1 or body.get("prev") != state.last_mac:
            state.problems.append(
                f"{where}: does not follow checkpoint {state.count} (a checkpoint is missing)"
            )
            return
        for chain, (seq, head_hash) in body["heads"].items():
            state.heads[chain] = (seq, head_hash)
        if state.count == 0:
            state.first = dict(state.heads)
        if len(state.heads) != body.get("chains") or digest(state.heads) != body.get("digest"):
            state.problems.append(f"{where}: its heads do not add up to its digest")
            return
        state.count, state.last_mac, state.last_at = body["n"], body["mac"], body["at"]

    @contextmanager
    def writing(self) -> Iterator[Callable[[Mapping[str, tuple[int, str]], datetime], dict[str, Any]]]:
        """The log locked for one writer; what it gives writes a checkpoint. Read the heads from the database
        inside: a writer that read them before another wrote newer ones would find its own moved back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked() as fd:
            yield lambda heads, at: self._append(fd, heads, at)

    def append(self, heads: Mapping[str, tuple[int, str]], at: datetime) -> dict[str, Any]:
        with self.writing() as write:
            return write(heads, at)

    def _append(self, fd: int, heads: Mapping[str, tuple[int, str]], at: datetime) -> dict[str, Any]:
        """Write a checkpoint of `heads` (every chain's head, read from the database now), unless they
        contradict the last one (CheckpointRefused). Returns the line written."""
        state = self.read()
        if state.problems:
            raise CheckpointRefused("the checkpoint log is damaged: " + "; ".join(state.problems))
        refusals = []
        for chain, (seq, head_hash) in sorted(state.heads.items()):
            now = heads.get(chain)
            if now is None:
                refusals.append(f"chain {chain} is missing (checkpointed at sequence {seq})")
            elif now[0] < seq:
                refusals.append(f"chain {chain} moved back from sequence {seq} to {now[0]}")
            elif now[0] == seq and now[1] != head_hash:
                refusals.append(f"chain {chain}: its head at sequence {seq} was replaced")
        if refusals:
            raise CheckpointRefused("; ".join(refusals))
        changed = {chain: head for chain, head in heads.items() if state.heads.get(chain) != head}
        full = state.heads | changed
        kid, key = next(iter(self.keyring.items()))
        body = sign(
            {
                "v": VERSION,
                "n": state.count + 1,
                "at": at.isoformat(),
                "key_id": kid,
                "prev": state.last_mac,
                "chains": len(full),
                "digest": digest(full),
                "heads": {chain: [seq, head_hash] for chain, (seq, head_hash) in sorted(changed.items())},
            },
            key,
        )
        line = json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # the last write was cut short: start a line of our own
        while line:  # one write for a regular file, unless interrupted
            line = line[os.write(fd, line) :]
        os.fsync(fd)
        return body

    @contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)
