"""Transfers and processors: transfer mechanisms, impact assessments, sub-processors, agreements; processors end; disclosures checked.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 06:00:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("processor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transfer_mechanism", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("scc_module", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("scc_signed_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("derogation", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("transfer_reference", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("tia_reference", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("sub_processors", _JSON, nullable=True))
        batch_op.add_column(sa.Column("dpa_signed_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("dpa_expires_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("end_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("disclosure", schema=None) as batch_op:
        batch_op.add_column(sa.Column("flagged", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("flags", _JSON, nullable=True))
        batch_op.create_index("ix_disclosure_flagged_recorded_at", ["flagged", "recorded_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("disclosure", schema=None) as batch_op:
        batch_op.drop_index("ix_disclosure_flagged_recorded_at")
        batch_op.drop_column("flags")
        batch_op.drop_column("flagged")
    with op.batch_alter_table("processor", schema=None) as batch_op:
        for column in (
            "end_reason",
            "ended_at",
            "updated_at",
            "dpa_expires_on",
            "dpa_signed_on",
            "sub_processors",
            "tia_reference",
            "transfer_reference",
            "derogation",
            "scc_signed_on",
            "scc_module",
            "transfer_mechanism",
        ):
            batch_op.drop_column(column)
