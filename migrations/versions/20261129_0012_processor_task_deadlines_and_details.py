"""Processor tasks say what a processor needs to act: the deadline of the request they carry out, and the
categories it received, the identifiers it was given and what changed (GDPR Art. 19).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 02:16:19.205547+00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('processor_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('processor_task', schema=None) as batch_op:
        batch_op.drop_column('details')
        batch_op.drop_column('due_at')

