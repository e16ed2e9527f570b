"""The audit chain against someone who can write the database (issue 17, item 3): an event edited and the
later links recomputed, a subject's whole chain deleted with its head, the newest event dropped and the head
moved back. Each is done through SQL on the test database, and `privacy audit verify` must notice it; plus key
rotation and the checkpoint log's format."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, insert, select, update

from app.audit import service as audit_service
from app.audit.models import AuditChainHead, AuditEvent
from app.auth.principals import Principal, Role
from app.cli import main as privacy
from app.core.config import DEV_AUDIT_KEYS
from app.core.db import unit_of_work
from app.core.time import utc_now
from app.runtime import Runtime
from tests.support import STAFF_ALL, app_settings, make_subject

NEW_KEYS = "k2:" + base64.b64encode(b"a-new-audit-key-of-32-bytes-or-more!").decode()


def cli(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        privacy(list(argv))
    captured = capsys.readouterr()
    return exited.value.code or 0, captured.out + captured.err


async def run_cli(capsys, *argv: str) -> tuple[int, str]:
    return await asyncio.to_thread(cli, capsys, *argv)


@pytest.fixture
def checkpoints(monkeypatch, database_url, tmp_path):
    """The CLI on the test database, its checkpoint log in a folder of the test's own."""
    monkeypatch.setenv("PRIVACY_DATABASE_URL", database_url)
    monkeypatch.setenv("PRIVACY_AUDIT_CHECKPOINT_DIR", str(tmp_path))
    return tmp_path / "audit-checkpoints.jsonl"


def sha256_link(event: dict) -> str:
    """What an attacker without the key recomputes: the old, unkeyed link (SHA-256 over the fields)."""
    canonical = json.dumps(
        [
            str(event["id"]),
            event["chain"],
            event["seq"],
            event["at"].isoformat(),
            event["actor"],
            event["role"],
            event["action"],
            str(event["subject_id"]) if event["subject_id"] else None,
            event["target"],
            event["request_id"],
            event["prev_hash"],
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def chain_rows(db, chain: str) -> tuple[list[dict], dict | None]:
    async with db() as session:
        events = [
            dict(r._mapping)
            for r in await session.execute(
                select(AuditEvent.__table__).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
            )
        ]
        head = (
            await session.execute(select(AuditChainHead.__table__).where(AuditChainHead.chain == chain))
        ).first()
    return events, dict(head._mapping) if head else None


@contextlib.asynccontextmanager
async def restored(db, chain: str) -> AsyncIterator[tuple[list[dict], dict | None]]:
    """The chain's rows as they are now; put back afterwards, whatever the test did to them (the database is
    shared with the rest of the run, whose `verify` must keep passing)."""
    events, head = await chain_rows(db, chain)
    try:
        yield events, head
    finally:
        async with db() as session:
            await session.execute(delete(AuditEvent.__table__).where(AuditEvent.chain == chain))
            await session.execute(delete(AuditChainHead.__table__).where(AuditChainHead.chain == chain))
            if events:
                await session.execute(insert(AuditEvent.__table__), events)
            if head:
                await session.execute(insert(AuditChainHead.__table__), [head])
            await session.commit()


async def busy_subject(client, reads: int = 3) -> str:
    subject = await make_subject(client)
    for _ in range(reads):
        assert (await client.get(f"/v1/subjects/{subject['id']}", headers=STAFF_ALL)).status_code == 200
    return subject["id"]


# --- the three attacks ----------------------------------------------------------------------------


@pytest.mark.parametrize("disguise", ["keeps_key_ids", "poses_as_unkeyed"])
async def test_an_edited_event_with_every_later_link_recomputed_is_found(
    client, db, checkpoints, capsys, disguise
):
    """The attacker rewrites event 2's action and recomputes every later link (and the head) with SHA-256: all
    the database holds. Without the key, the MAC does not match; posing as a pre-migration unkeyed event does
    not help either, after a keyed one or once a checkpoint sealed the unkeyed ones."""
    sid = await busy_subject(client)
    checkpointed, _ = await run_cli(capsys, "audit", "checkpoint")
    async with restored(db, sid) as (events, _):
        prev = events[0]["hash"]
        async with db() as session:
            for event in events[1:]:
                event = dict(event, prev_hash=prev)
                if event["seq"] == 2:
                    event["action"] = "subject.created"
                if disguise == "poses_as_unkeyed" and "key_id" in event:
                    event["key_id"] = None
                prev = sha256_link(event)
                await session.execute(
                    update(AuditEvent.__table__)
                    .where(AuditEvent.id == event["id"])
                    .values(
                        action=event["action"],
                        prev_hash=event["prev_hash"],
                        hash=prev,
                        **({"key_id": event["key_id"]} if "key_id" in event else {}),
                    )
                )
            await session.execute(
                update(AuditChainHead.__table__).where(AuditChainHead.chain == sid).values(hash=prev)
            )
            await session.commit()
        code, out = await run_cli(capsys, "audit", "verify")
        assert code == 1 and "BROKEN" in out and str(events[1]["id"]) in out, out
    assert checkpointed == 0
    code, out = await run_cli(capsys, "audit", "verify")
    assert code == 0, out


async def test_a_whole_chain_deleted_with_its_head_is_found(client, db, checkpoints, capsys):
    sid = await busy_subject(client)
    checkpointed, _ = await run_cli(capsys, "audit", "checkpoint")
    async with restored(db, sid):
        async with db() as session:
            await session.execute(delete(AuditEvent.__table__).where(AuditEvent.chain == sid))
            await session.execute(delete(AuditChainHead.__table__).where(AuditChainHead.chain == sid))
            await session.commit()
        code, out = await run_cli(capsys, "audit", "verify")
        assert code == 1 and sid in out and "missing" in out, out
        # Nor does the next checkpoint paper over it: it refuses, and writes nothing.
        refused, message = await run_cli(capsys, "audit", "checkpoint")
        assert refused == 1 and sid in message and "missing" in message, message
    assert checkpointed == 0 and len(checkpoints.read_text().splitlines()) == 1


async def test_the_newest_event_dropped_and_the_head_moved_back_is_found(client, db, checkpoints, capsys):
    sid = await busy_subject(client)
    checkpointed, _ = await run_cli(capsys, "audit", "checkpoint")
    async with restored(db, sid) as (events, _):
        newest, before = events[-1], events[-2]
        async with db() as session:
            await session.execute(delete(AuditEvent.__table__).where(AuditEvent.id == newest["id"]))
            await session.execute(
                update(AuditChainHead.__table__)
                .where(AuditChainHead.chain == sid)
                .values(seq=before["seq"], hash=before["hash"])
            )
            await session.commit()
        code, out = await run_cli(capsys, "audit", "verify")
        assert code == 1 and sid in out and "moved back" in out, out
        refused, message = await run_cli(capsys, "audit", "checkpoint")
        assert refused == 1 and "moved back" in message, message
    assert checkpointed == 0


async def test_events_appended_after_the_checkpoint_still_verify(client, db, checkpoints, capsys):
    """The checkpoint is a floor, not a ceiling: chains grow and new ones start after it."""
    sid = await busy_subject(client, reads=1)
    assert (await run_cli(capsys, "audit", "checkpoint"))[0] == 0
    await busy_subject(client, reads=1)
    assert (await client.get(f"/v1/subjects/{sid}", headers=STAFF_ALL)).status_code == 200
    code, out = await run_cli(capsys, "audit", "verify")
    assert code == 0 and "against checkpoint 1" in out, out


# --- keys and their rotation ----------------------------------------------------------------------


async def test_events_under_an_old_key_id_still_verify_after_rotation(
    client, db, database_url, checkpoints, capsys, monkeypatch
):
    """Rotation: the new key goes first (it signs), the old one stays (it verifies). A chain may hold both;
    so may the checkpoint log. Drop the old key too soon and verify names the key id it lacks."""
    sid = await busy_subject(client, reads=1)
    assert (await run_cli(capsys, "audit", "checkpoint"))[0] == 0  # signed with the old (development) key
    rotated = Runtime.build(
        app_settings(database_url=database_url, audit_keys=f"{NEW_KEYS},{DEV_AUDIT_KEYS}")
    )
    async with restored(db, sid):
        async with rotated.sessions(db.kw["bind"])() as session:
            actor = Principal(sub="rotation-test", role=Role.staff, scopes=frozenset())
            await audit_service.record(session, actor, "test.after_rotation", subject_id=uuid.UUID(sid))
            await session.commit()
        events, _ = await chain_rows(db, sid)
        assert [e["key_id"] for e in events] == ["dev", "dev", "k2"]
        monkeypatch.setenv("PRIVACY_AUDIT_KEYS", f"{NEW_KEYS},{DEV_AUDIT_KEYS}")
        code, out = await run_cli(capsys, "audit", "verify")
        assert code == 0 and "intact" in out, out
        assert (await run_cli(capsys, "audit", "checkpoint"))[0] == 0  # signed with the new key
        assert [json.loads(line)["key_id"] for line in checkpoints.read_text().splitlines()] == ["dev", "k2"]
        assert (await run_cli(capsys, "audit", "verify"))[0] == 0

        monkeypatch.setenv("PRIVACY_AUDIT_KEYS", NEW_KEYS)  # the old key dropped too soon
        code, out = await run_cli(capsys, "audit", "verify")
        assert code == 1 and "'dev'" in out and "not configured" in out, out


@pytest.mark.parametrize(
    "keys",
    [
        "dev:" + base64.b64encode(b"31-bytes-is-one-byte-too-short!").decode(),
        "dev:not base64!",
        "no-key-id",
        ":" + DEV_AUDIT_KEYS.split(":")[1],
    ],
)
def test_audit_keys_must_be_named_base64_of_32_bytes_or_more(keys):
    from app.core.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="PRIVACY_AUDIT_KEYS"):
        Settings(audit_keys=keys).check()


def test_production_refuses_the_development_audit_key():
    from app.core.config import Settings

    assert any("PRIVACY_AUDIT_KEYS" in p for p in Settings(env="production").production_problems())
    rotated = Settings(env="production", audit_keys=NEW_KEYS)
    assert not any("PRIVACY_AUDIT_KEYS" in p for p in rotated.production_problems())


# --- the checkpoint log ---------------------------------------------------------------------------


def expected_mac(line: dict, key: bytes) -> str:
    body = {k: v for k, v in line.items() if k != "mac"}
    return hmac.new(
        key, json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), hashlib.sha256
    ).hexdigest()


async def test_the_checkpoint_log_is_signed_json_lines_each_linked_to_the_one_before(
    client, db, checkpoints, capsys
):
    sid = await busy_subject(client, reads=1)
    assert (await run_cli(capsys, "audit", "checkpoint"))[0] == 0
    assert (await client.get(f"/v1/subjects/{sid}", headers=STAFF_ALL)).status_code == 200
    assert (await run_cli(capsys, "audit", "checkpoint"))[0] == 0
    assert checkpoints.read_bytes().endswith(b"\n")
    first, second = (json.loads(line) for line in checkpoints.read_text().splitlines())
    key = base64.b64decode(DEV_AUDIT_KEYS.split(":", 1)[1])
    for n, line in enumerate((first, second), start=1):
        assert set(line) == {"v", "n", "at", "key_id", "prev", "chains", "digest", "heads", "mac"}
        assert line["v"] == 1 and line["n"] == n and line["key_id"] == "dev"
        assert line["mac"] == expected_mac(line, key)
    assert first["prev"] == "0" * 64 and second["prev"] == first["mac"]

    async with db() as session:
        heads = {
            h.chain: (h.seq, h.hash)
            for h in (await session.execute(select(AuditChainHead))).scalars()
            if h.seq
        }
    assert {chain: tuple(head) for chain, head in first["heads"].items()}.keys() <= heads.keys()
    assert first["chains"] == len(first["heads"])  # the first holds every chain
    assert set(second["heads"]) == {sid} and second["heads"][sid] == list(heads[sid])  # then only what moved
    full = {c: tuple(h) for c, h in first["heads"].items()} | {
        c: tuple(h) for c, h in second["heads"].items()
    }
    summed = "".join(f"{c} {s} {h}\n" for c, (s, h) in sorted(full.items()))
    assert second["chains"] == len(full) and second["digest"] == hashlib.sha256(summed.encode()).hexdigest()


async def test_an_altered_or_missing_checkpoint_line_is_reported(client, checkpoints, capsys):
    """Every kind of damage to the log: a line taken out (first, middle), lines swapped, a field changed, a
    line re-signed under a key id that is not configured. verify reports it, and checkpoint refuses to go on
    from it."""
    await busy_subject(client, reads=1)
    for _ in range(3):
        assert (await run_cli(capsys, "audit", "checkpoint"))[0] == 0
    lines = checkpoints.read_text().splitlines()
    third = json.loads(lines[2])
    unknown_key = base64.b64decode(NEW_KEYS.split(":", 1)[1])
    resigned = third | {"key_id": "k2"}
    resigned["mac"] = expected_mac(resigned, unknown_key)
    damages = {
        "middle line missing": ([lines[0], lines[2]], "missing"),
        "first line missing": (lines[1:], "missing"),
        "lines swapped": ([lines[0], lines[2], lines[1]], "missing"),
        "field changed": ([*lines[:2], json.dumps(third | {"chains": third["chains"] + 1})], "MAC"),
        "heads changed": ([*lines[:2], json.dumps(third | {"heads": {"x": [1, "0" * 64]}})], "MAC"),
        "unknown key id": ([*lines[:2], json.dumps(resigned)], "not configured"),
    }
    for damage, (damaged, said) in damages.items():
        checkpoints.write_text("\n".join(damaged) + "\n")
        code, out = await run_cli(capsys, "audit", "verify")
        assert code == 1 and said in out, (damage, out)
        code, out = await run_cli(capsys, "audit", "checkpoint")
        assert code == 1 and "damaged" in out, (damage, out)


async def test_a_checkpoint_cut_short_by_a_crash_is_skipped_and_the_next_starts_a_line_of_its_own(
    client, checkpoints, capsys
):
    await busy_subject(client, reads=1)
    assert (await run_cli(capsys, "audit", "checkpoint"))[0] == 0
    with checkpoints.open("a") as log:
        log.write('{"v":1,"n":2,"heads":{"x"')  # a write cut short: no newline
    code, out = await run_cli(capsys, "audit", "verify")
    assert code == 0 and "cut short" in out, out
    assert (await run_cli(capsys, "audit", "checkpoint"))[0] == 0
    code, out = await run_cli(capsys, "audit", "verify")
    assert code == 0 and "cut short" in out and "against checkpoint 2" in out, out
    assert [json.loads(line)["n"] for line in checkpoints.read_text().splitlines()[::2]] == [1, 2]


# --- events from before the chain was keyed ------------------------------------------------------------


async def add_unkeyed(db, chain: uuid.UUID, seqs: range, prev: str) -> str:
    """Events as the release before the audit key wrote them (no key id, SHA-256 links), the head moved."""
    async with db() as session:
        for seq in seqs:
            event = {
                "id": uuid.uuid4(),
                "chain": str(chain),
                "seq": seq,
                "at": utc_now(),
                "actor": "old-release",
                "role": "staff",
                "action": "subject.read",
                "subject_id": chain,
                "target": None,
                "request_id": None,
                "prev_hash": prev,
            }
            prev = sha256_link(event)
            await session.execute(insert(AuditEvent.__table__), [event | {"hash": prev, "key_id": None}])
        head = {"chain": str(chain), "seq": seqs[-1], "hash": prev}
        if seqs[0] == 1:
            await session.execute(insert(AuditChainHead.__table__), [head])
        else:
            await session.execute(
                update(AuditChainHead.__table__)
                .where(AuditChainHead.chain == str(chain))
                .values(seq=head["seq"], hash=head["hash"])
            )
        await session.commit()
    return prev


async def test_unkeyed_events_from_before_the_migration_verify_until_sealed_and_no_new_ones_pass(
    db, checkpoints, capsys
):
    """The migration keeps the old events as they are. verify accepts their SHA-256 links, says they are
    not sealed until a checkpoint is written, and from then on refuses any unkeyed event the checkpoint did
    not seal: one after a keyed event, or a whole new chain of them."""
    old, new = uuid.uuid4(), uuid.uuid4()
    async with restored(db, str(old)), restored(db, str(new)):
        prev = await add_unkeyed(db, old, range(1, 3), "0" * 64)
        code, out = await run_cli(capsys, "audit", "verify")
        assert code == 0 and "not sealed" in out, out
        assert (await run_cli(capsys, "audit", "checkpoint"))[0] == 0
        code, out = await run_cli(capsys, "audit", "verify")
        assert code == 0 and "not sealed" not in out, out

        async with unit_of_work(db) as session:  # the new release carries the old chain on, keyed
            actor = Principal(sub="new-release", role=Role.staff, scopes=frozenset())
            await audit_service.record(session, actor, "subject.read", subject_id=old)
        code, out = await run_cli(capsys, "audit", "verify")
        assert code == 0, out

        events, _ = await chain_rows(db, str(old))
        await add_unkeyed(db, old, range(4, 5), events[-1]["hash"])  # forged: unkeyed after a keyed one
        code, out = await run_cli(capsys, "audit", "verify")
        assert code == 1 and "unkeyed event after keyed" in out, out

        await add_unkeyed(db, new, range(1, 2), "0" * 64)  # forged: a whole chain the checkpoint never sealed
        code, out = await run_cli(capsys, "audit", "verify")
        assert code == 1 and str(new) in out and "sealed" in out, out
    assert prev


def test_checkpoints_written_at_once_by_many_writers_form_one_unbroken_log(tmp_path):
    """Writers take turns (a lock on the file, the heads read under it), and each line goes out whole: 8
    threads, 5 checkpoints each, of a "database" whose chains keep growing, read back as 40 checkpoints, each
    linked to the one before, none refused as moved back."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from app.audit.checkpoints import CheckpointLog

    keyring = {"dev": base64.b64decode(DEV_AUDIT_KEYS.split(":", 1)[1])}
    log = CheckpointLog(tmp_path, keyring)
    grown, lock = [0], threading.Lock()

    def database_heads() -> dict[str, tuple[int, str]]:
        with lock:
            grown[0] += 1
            return {f"chain-{c}": (grown[0] + c, f"{grown[0] + c:064d}") for c in range(3)}

    def write(_: int) -> None:
        for _ in range(5):
            with log.writing() as checkpoint:
                checkpoint(database_heads(), utc_now())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    state = log.read()
    assert state.problems == [] and state.warnings == [] and state.count == 40
    assert state.heads == {f"chain-{c}": (40 + c, f"{40 + c:064d}") for c in range(3)}


async def test_verify_reads_heads_and_events_of_one_moment_while_writers_append(
    client, db, database_url, monkeypatch, tmp_path
):
    """verify on a live service: an event appended between its read of the heads and its read of the events
    must not pass for a chain whose head is missing. (PostgreSQL: on SQLite the verifying transaction holds
    the write lock, and writers wait for it.)"""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite: writers wait for the verifying transaction")
    from app.audit import repository as audit_repository

    sid = await busy_subject(client, reads=1)
    read_heads = audit_repository.all_heads

    async def heads_then_a_writer(session):
        heads = await read_heads(session)
        async with unit_of_work(db) as other:  # another connection, committed before verify reads on
            actor = Principal(sub="live-writer", role=Role.staff, scopes=frozenset())
            await audit_service.record(other, actor, "subject.read", subject_id=uuid.UUID(sid))
        return heads

    monkeypatch.setattr(audit_repository, "all_heads", heads_then_a_writer)
    async with db() as session:
        result = await audit_service.verify(session, tmp_path)
    assert result.breaks == [], result.breaks
    events, head = await chain_rows(db, sid)
    assert len(events) == 3 and head["seq"] == 3
