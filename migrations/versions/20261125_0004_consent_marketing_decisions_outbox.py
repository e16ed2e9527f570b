"""Consent events and state, objections, marketing preferences and contact opt-outs, subject contacts, outbox;
Global Privacy Control on purposes (on for marketing and analytics).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:55:17.383919+00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('contact_opt_out',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('contact_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_opt_out')),
    sa.UniqueConstraint('contact_hash', 'channel', name='uq_contact_opt_out_contact_hash_channel')
    )
    op.create_table('outbox_event',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('type', sa.String(length=60), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_event'))
    )
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_event_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_event_subject_id'), ['subject_id'], unique=False)

    op.create_table('consent_event',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('policy_version', sa.String(length=32), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('evidence_ip', sa.String(length=45), nullable=True),
    sa.Column('evidence_user_agent', sa.String(length=1000), nullable=True),
    sa.Column('evidence_text_shown', sa.Text(), nullable=True),
    sa.Column('receipt', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['policy_version'], ['policy_version.version'], name=op.f('fk_consent_event_policy_version_policy_version')),
    sa.ForeignKeyConstraint(['purpose'], ['purpose.code'], name=op.f('fk_consent_event_purpose_purpose')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_consent_event_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_event'))
    )
    with op.batch_alter_table('consent_event', schema=None) as batch_op:
        batch_op.create_index('ix_consent_event_subject_id_occurred_at', ['subject_id', 'occurred_at'], unique=False)

    op.create_table('consent_state',
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('policy_version', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['purpose'], ['purpose.code'], name=op.f('fk_consent_state_purpose_purpose')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_consent_state_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subject_id', 'purpose', name=op.f('pk_consent_state'))
    )
    op.create_table('marketing_preference',
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_marketing_preference_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subject_id', 'channel', name=op.f('pk_marketing_preference'))
    )
    op.create_table('objection',
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('upheld_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('upheld_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['purpose'], ['purpose.code'], name=op.f('fk_objection_purpose_purpose')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_objection_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subject_id', 'purpose', name=op.f('pk_objection'))
    )
    op.create_table('subject_contact',
    sa.Column('contact_hash', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('item_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['item_id'], ['personal_data_item.id'], name=op.f('fk_subject_contact_item_id_personal_data_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_subject_contact_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_hash', 'subject_id', name=op.f('pk_subject_contact'))
    )
    with op.batch_alter_table('subject_contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subject_contact_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subject_contact_subject_id'), ['subject_id'], unique=False)

    with op.batch_alter_table('purpose', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gpc', sa.Boolean(), server_default=sa.false(), nullable=False))

    purpose = sa.table("purpose", sa.column("code", sa.String), sa.column("gpc", sa.Boolean))
    op.execute(purpose.update().where(purpose.c.code.in_(["marketing", "analytics"])).values(gpc=True))
    # Subjects registered before this revision: their own address becomes their first known contact.
    op.execute("INSERT INTO subject_contact (contact_hash, subject_id, kind) "
               "SELECT email_hash, id, 'email' FROM subject WHERE email_hash IS NOT NULL")



def downgrade() -> None:
    with op.batch_alter_table('purpose', schema=None) as batch_op:
        batch_op.drop_column('gpc')

    with op.batch_alter_table('subject_contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subject_contact_subject_id'))
        batch_op.drop_index(batch_op.f('ix_subject_contact_item_id'))

    op.drop_table('subject_contact')
    op.drop_table('objection')
    op.drop_table('marketing_preference')
    op.drop_table('consent_state')
    with op.batch_alter_table('consent_event', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_event_subject_id_occurred_at')

    op.drop_table('consent_event')
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_event_subject_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_event_created_at'))

    op.drop_table('outbox_event')
    op.drop_table('contact_opt_out')
