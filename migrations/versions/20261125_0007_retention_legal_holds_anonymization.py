"""Retention: rules per data category, subject categories, legal holds, retention runs, anonymization marks.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 20:43:28.384091+00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# IP addresses go 90 days after collection, whatever the purpose they were collected for (but billing).
IP_ADDRESSES = {"clock": "after_collection", "period": "P90D", "action": "delete",
                "description": {"sv": "Raderas 90 dagar efter insamling.", "en": "Deleted 90 days after collection."}}
SUBJECT_CATEGORIES = {
    "service": ["customers"],
    "billing": ["customers"],
    "customer_support": ["customers", "prospects", "contacts"],
    "marketing": ["customers", "prospects"],
    "newsletter": ["newsletter_subscribers", "course_participants"],
    "analytics": ["website_visitors"],
}


def upgrade() -> None:
    op.create_table('retention_run',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('requested_by', sa.String(length=220), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cursor', sa.String(length=36), nullable=True),
    sa.Column('subjects_scanned', sa.Integer(), nullable=False),
    sa.Column('items_scanned', sa.Integer(), nullable=False),
    sa.Column('report', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_run'))
    )
    with op.batch_alter_table('retention_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_run_started_at'), ['started_at'], unique=False)

    op.create_table('legal_hold',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('placed_by', sa.String(length=200), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=200), nullable=True),
    sa.Column('lift_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_legal_hold_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_hold'))
    )
    with op.batch_alter_table('legal_hold', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_hold_placed_at'), ['placed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_legal_hold_subject_id'), ['subject_id'], unique=False)

    with op.batch_alter_table('personal_data_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('anonymized_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('purpose', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retention_by_category', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('subject_categories', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True))

    purpose = sa.table("purpose", sa.column("code", sa.String),
                       sa.column("retention_by_category", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
                       sa.column("subject_categories", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")))
    op.execute(purpose.update().values(retention_by_category={}, subject_categories=[]))
    for code, subject_categories in SUBJECT_CATEGORIES.items():
        by_category = {} if code == "billing" else {"ip_address": IP_ADDRESSES}
        op.execute(purpose.update().where(purpose.c.code == code).values(
            retention_by_category=by_category, subject_categories=subject_categories))
    with op.batch_alter_table('purpose', schema=None) as batch_op:
        batch_op.alter_column('retention_by_category', existing_type=sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False)
        batch_op.alter_column('subject_categories', existing_type=sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False)

    with op.batch_alter_table('subject', schema=None) as batch_op:
        batch_op.add_column(sa.Column('anonymized_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('subject', schema=None) as batch_op:
        batch_op.drop_column('anonymized_at')

    with op.batch_alter_table('purpose', schema=None) as batch_op:
        batch_op.drop_column('subject_categories')
        batch_op.drop_column('retention_by_category')

    with op.batch_alter_table('personal_data_item', schema=None) as batch_op:
        batch_op.drop_column('anonymized_at')

    with op.batch_alter_table('legal_hold', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_hold_subject_id'))
        batch_op.drop_index(batch_op.f('ix_legal_hold_placed_at'))

    op.drop_table('legal_hold')
    with op.batch_alter_table('retention_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_run_started_at'))

    op.drop_table('retention_run')
