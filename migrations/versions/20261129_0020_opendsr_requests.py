"""OpenDSR: rights requests that came through the OpenDSR door, with their callbacks.

A rights request records where it came from (`origin`, null for /v1 and the privacy center), the sender's id
for it (`external_id`, unique per origin) and the webhook endpoints its status callbacks go to.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 06:00:00.000000+00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('rights_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('external_id', sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                'status_callbacks', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True
            )
        )
        batch_op.create_index(
            'ix_rights_request_origin_external_id', ['origin', 'external_id'], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table('rights_request', schema=None) as batch_op:
        batch_op.drop_index('ix_rights_request_origin_external_id')
        batch_op.drop_column('status_callbacks')
        batch_op.drop_column('external_id')
        batch_op.drop_column('origin')
