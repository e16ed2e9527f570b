"""Fewer indexes on the tables every change writes to: the outbox keeps one partial index (the dispatcher's
queue of undispatched events) instead of three, and audit events are found by subject through their chain
(the unique (chain, seq) index) instead of an index of their own.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 21:30:00.000000+00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_event_subject_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_event_dispatched_at'))
        batch_op.drop_index(batch_op.f('ix_outbox_event_created_at'))
        batch_op.create_index('ix_outbox_event_undispatched', ['created_at'], unique=False,
                              postgresql_where=sa.text('dispatched_at IS NULL'),
                              sqlite_where=sa.text('dispatched_at IS NULL'))
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_subject_id'))


def downgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_subject_id'), ['subject_id'], unique=False)
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_event_undispatched', postgresql_where=sa.text('dispatched_at IS NULL'),
                            sqlite_where=sa.text('dispatched_at IS NULL'))
        batch_op.create_index(batch_op.f('ix_outbox_event_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_event_dispatched_at'), ['dispatched_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_event_subject_id'), ['subject_id'], unique=False)
