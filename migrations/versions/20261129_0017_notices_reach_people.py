"""Notices reach people: which notice version each subject was given, when and how; who is owed a notice.

Consents due for renewal need no table: they are read from the notice versions (catalog.cache).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 06:00:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"]),
        sa.ForeignKeyConstraint(["version"], ["policy_version.version"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notice_delivery_subject_id", "notice_delivery", ["subject_id"])
    op.create_table(
        "notice_due",
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"]),
        sa.ForeignKeyConstraint(["version"], ["policy_version.version"]),
        sa.PrimaryKeyConstraint("subject_id"),
    )
    op.create_index("ix_notice_due_due_at", "notice_due", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_notice_due_due_at", table_name="notice_due")
    op.drop_table("notice_due")
    op.drop_index("ix_notice_delivery_subject_id", table_name="notice_delivery")
    op.drop_table("notice_delivery")
