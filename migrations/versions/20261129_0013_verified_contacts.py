"""Contacts count for marketing only when verified: by a code sent to them, or by staff with a recorded reason.

Every subject's registered address (the contact without an item) counts as verified by its registration, as
of the subject's registration; contacts from data items start unverified.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 05:00:00.000000+00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('subject_contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('verified_by', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('verified_reason', sa.String(length=200), nullable=True))
    op.execute(
        "UPDATE subject_contact SET verified_by = 'registration', verified_at = "
        "(SELECT subject.created_at FROM subject WHERE subject.id = subject_contact.subject_id) "
        "WHERE item_id IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table('subject_contact', schema=None) as batch_op:
        batch_op.drop_column('verified_reason')
        batch_op.drop_column('verified_by')
        batch_op.drop_column('verified_at')
