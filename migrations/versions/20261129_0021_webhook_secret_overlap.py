"""Webhook secret rotation with an overlap: an endpoint keeps its previous signing secret (encrypted like the
current one) and until when it still signs deliveries, beside the new one.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29 09:00:00.000000+00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_endpoint', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret_ciphertext', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_key_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_valid_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_endpoint', schema=None) as batch_op:
        batch_op.drop_column('previous_secret_valid_until')
        batch_op.drop_column('previous_secret_key_id')
        batch_op.drop_column('previous_secret_ciphertext')
