"""Reliability: a webhook delivery's lease has an owner, and a retention run may resume a dead one.

A webhook delivery's lease has an owner (a random id per claim), checked when the outcome is recorded; a
retention run that takes over from one whose process died names it (`resumed_from`).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 05:00:00.000000+00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=32), nullable=True))
    with op.batch_alter_table('retention_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resumed_from', sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('retention_run', schema=None) as batch_op:
        batch_op.drop_column('resumed_from')
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_column('lease_owner')
