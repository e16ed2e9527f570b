"""The audit trail: what is recorded, who may read it, and the hash chain that shows tampering."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import make_transient

from app.audit import repository as audit_repository
from app.audit import service as audit_service
from app.audit.models import AuditEvent
from app.auth.principals import Principal, Role
from app.cli import main as privacy
from app.core.db import unit_of_work
from tests.support import STAFF_ALL, add_item, as_subject, assert_problem, make_subject, staff


async def events_for(client, subject_id: str) -> list[dict]:
    response = await client.get(
        "/v1/audit-events", params={"subject_id": subject_id, "limit": 500}, headers=staff("audit:read")
    )
    assert response.status_code == 200
    return response.json()["items"]


async def test_reads_and_changes_are_recorded_with_actor_role_and_request_id(client):
    subject = await make_subject(client)
    sid = subject["id"]
    item = await add_item(client, sid)
    await client.get(f"/v1/subjects/{sid}", headers=as_subject(sid))
    await client.get(
        f"/v1/subjects/{sid}/data",
        headers=staff("subjects:read"),
    )
    await client.patch(
        f"/v1/subjects/{sid}/data/{item['id']}", json={"value": "x"}, headers=staff("subjects:write")
    )
    await client.get(
        "/v1/subjects",
        params={"email": subject["email"]},
        headers=staff("subjects:read"),
    )
    traced = await client.get(
        f"/v1/subjects/{sid}", headers=staff("subjects:read") | {"X-Request-ID": "audit-trace-1"}
    )
    assert traced.status_code == 200

    events = await events_for(client, sid)
    actions = [e["action"] for e in reversed(events)]
    assert actions == [
        "subject.created",
        "personal_data.added",
        "subject.read",
        "personal_data.read",
        "personal_data.rectified",
        "subject.read",
        "subject.read",
    ]
    newest = events[0]
    assert (
        newest["request_id"] == "audit-trace-1" and newest["actor"] == "tester" and newest["role"] == "staff"
    )
    own_read = next(e for e in events if e["role"] == "subject")
    assert own_read["actor"] == sid
    assert set(newest) == {"id", "at", "actor", "role", "action", "subject_id", "target", "request_id"}


async def test_audit_needs_audit_read(client):
    assert_problem(await client.get("/v1/audit-events", headers=staff("subjects:read")), 403)
    subject = await make_subject(client)
    assert_problem(await client.get("/v1/audit-events", headers=as_subject(subject["id"])), 403)


async def test_concurrent_writes_to_one_subject_keep_one_unbroken_chain(client, db):
    subject = await make_subject(client)
    sid = subject["id"]
    results = await asyncio.gather(*[client.get(f"/v1/subjects/{sid}", headers=STAFF_ALL) for _ in range(10)])
    assert all(r.status_code == 200 for r in results)
    async with db() as session:
        seqs = (
            (
                await session.execute(
                    select(AuditEvent.seq).where(AuditEvent.chain == sid).order_by(AuditEvent.seq)
                )
            )
            .scalars()
            .all()
        )
    assert seqs == list(range(1, 12))


def run_verify(capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        privacy(["audit", "verify"])
    captured = capsys.readouterr()
    return exited.value.code, captured.out + captured.err


@pytest.fixture
def cli_env(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("PRIVACY_DATABASE_URL", database_url)
    monkeypatch.setenv("PRIVACY_AUDIT_CHECKPOINT_DIR", str(tmp_path))


async def test_audit_verify_finds_an_altered_event_and_names_it(client, db, cli_env, capsys):
    subject = await make_subject(client)
    await client.get(f"/v1/subjects/{subject['id']}", headers=STAFF_ALL)
    code, out = await asyncio.to_thread(run_verify, capsys)
    assert code == 0 and "intact" in out

    async with db() as session:
        event = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.chain == subject["id"], AuditEvent.seq == 2)
            )
        ).scalar_one()
        original = event.action
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == event.id).values(action="subject.created")
        )
        await session.commit()
    try:
        code, out = await asyncio.to_thread(run_verify, capsys)
        assert code == 1 and str(event.id) in out and "BROKEN" in out
    finally:
        async with db() as session:
            await session.execute(update(AuditEvent).where(AuditEvent.id == event.id).values(action=original))
            await session.commit()
    code, _ = await asyncio.to_thread(run_verify, capsys)
    assert code == 0


async def test_audit_verify_finds_a_deleted_event(client, db, cli_env, capsys):
    subject = await make_subject(client)
    for _ in range(2):
        await client.get(f"/v1/subjects/{subject['id']}", headers=STAFF_ALL)
    async with db() as session:
        middle = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.chain == subject["id"], AuditEvent.seq == 2)
            )
        ).scalar_one()
        session.expunge(middle)
        await session.execute(AuditEvent.__table__.delete().where(AuditEvent.id == middle.id))
        await session.commit()
    try:
        code, out = await asyncio.to_thread(run_verify, capsys)
        assert code == 1 and subject["id"] in out
    finally:
        async with db() as session:
            make_transient(middle)
            session.add(middle)
            await session.commit()
    code, _ = await asyncio.to_thread(run_verify, capsys)
    assert code == 0


async def test_subject_ids_are_uuid_strings_in_the_trail(client):
    subject = await make_subject(client)
    events = await events_for(client, subject["id"])
    assert all(uuid.UUID(e["subject_id"]) == uuid.UUID(subject["id"]) for e in events)


async def test_consent_writes_racing_audited_reads_keep_one_unbroken_chain(client, db):
    """Consent writes extend the chain optimistically (compare-and-set on its head); audited reads lock it.
    Mixed, at once, on one subject: every request succeeds and the chain stays one unbroken line."""
    subject = await make_subject(client)
    sid = subject["id"]
    writer = staff("consents:write")
    writes = [
        client.post(
            f"/v1/subjects/{sid}/consents",
            headers=writer,
            json={"purpose": purpose, "status": "granted", "channel": "api"},
        )
        for purpose in ("newsletter", "marketing", "analytics") * 4
    ]
    reads = [client.get(f"/v1/subjects/{sid}", headers=STAFF_ALL) for _ in range(8)]
    results = await asyncio.gather(*writes, *reads)
    assert [r.status_code for r in results] == [201] * 12 + [200] * 8, [
        r.text for r in results if r.status_code >= 300
    ]
    async with db() as session:
        seqs = (
            (
                await session.execute(
                    select(AuditEvent.seq).where(AuditEvent.chain == sid).order_by(AuditEvent.seq)
                )
            )
            .scalars()
            .all()
        )
        checked, broken = await audit_service.verify_chains(session)
    assert seqs == list(range(1, 22)) and broken is None and checked >= 21


async def test_an_append_from_a_stale_head_writes_nothing(client, db):
    subject = await make_subject(client)
    sid = uuid.UUID(subject["id"])
    actor = Principal(sub="test", role=Role.staff, scopes=frozenset())
    async with unit_of_work(db) as session:
        stale = await audit_repository.head(session, str(sid))
        link = audit_service.ChainLink(str(sid), sid, *stale)
        assert await audit_service.append(session, link, actor, "test.first")
        assert not await audit_service.append(
            session, link, actor, "test.second"
        )  # links to the same head again
        actions = (
            (
                await session.execute(
                    select(AuditEvent.action).where(AuditEvent.chain == str(sid)).order_by(AuditEvent.seq)
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["subject.created", "test.first"]
