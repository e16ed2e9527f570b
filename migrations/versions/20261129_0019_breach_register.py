"""The personal data breach register (GDPR Art. 33, 34).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29 06:00:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "breach",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reported_by", sa.String(length=220), nullable=False),
        sa.Column("processor_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processor_aware_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("aware_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_categories", JSON, nullable=False),
        sa.Column("subject_categories", JSON, nullable=False),
        sa.Column("subjects_estimate", sa.BigInteger(), nullable=True),
        sa.Column("records_estimate", sa.BigInteger(), nullable=True),
        sa.Column("consequences", sa.Text(), nullable=True),
        sa.Column("measures", sa.Text(), nullable=True),
        sa.Column("risk", sa.String(length=10), nullable=True),
        sa.Column("notify_imy", sa.Boolean(), nullable=True),
        sa.Column("imy_reason", sa.Text(), nullable=True),
        sa.Column("notify_subjects", sa.Boolean(), nullable=True),
        sa.Column("subjects_reason", sa.Text(), nullable=True),
        sa.Column("subjects_exception", sa.String(length=30), nullable=True),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assessed_by", sa.String(length=220), nullable=True),
        sa.Column("imy_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("imy_reference", sa.String(length=100), nullable=True),
        sa.Column("imy_delay_reason", sa.Text(), nullable=True),
        sa.Column("subject_notice", JSON, nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=220), nullable=True),
        sa.Column("closing_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["processor_id"], ["processor.id"], name=op.f("fk_breach_processor_id_processor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breach")),
    )
    with op.batch_alter_table("breach", schema=None) as batch_op:
        batch_op.create_index("ix_breach_status_due_at", ["status", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_breach_processor_id"), ["processor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_breach_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_breach_closed_at"), ["closed_at"], unique=False)

    op.create_table(
        "breach_query",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("breach_id", sa.Uuid(), nullable=False),
        sa.Column("criteria", JSON, nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ran_by", sa.String(length=220), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("linked", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["breach_id"], ["breach.id"], name=op.f("fk_breach_query_breach_id_breach"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breach_query")),
    )
    with op.batch_alter_table("breach_query", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_breach_query_breach_id"), ["breach_id"], unique=False)

    op.create_table(
        "breach_subject",
        sa.Column("breach_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=220), nullable=False),
        sa.Column("query_id", sa.Uuid(), nullable=True),
        sa.Column("notification", sa.String(length=10), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=True),
        sa.ForeignKeyConstraint(
            ["breach_id"], ["breach.id"], name=op.f("fk_breach_subject_breach_id_breach"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subject.id"],
            name=op.f("fk_breach_subject_subject_id_subject"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("breach_id", "subject_id", name=op.f("pk_breach_subject")),
    )
    with op.batch_alter_table("breach_subject", schema=None) as batch_op:
        batch_op.create_index(
            "ix_breach_subject_breach_id_notification", ["breach_id", "notification"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_breach_subject_subject_id"), ["subject_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("breach_subject", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_breach_subject_subject_id"))
        batch_op.drop_index("ix_breach_subject_breach_id_notification")
    op.drop_table("breach_subject")
    with op.batch_alter_table("breach_query", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_breach_query_breach_id"))
    op.drop_table("breach_query")
    with op.batch_alter_table("breach", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_breach_closed_at"))
        batch_op.drop_index(batch_op.f("ix_breach_created_at"))
        batch_op.drop_index(batch_op.f("ix_breach_processor_id"))
        batch_op.drop_index("ix_breach_status_due_at")
    op.drop_table("breach")
