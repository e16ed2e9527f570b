"""Rights requests and their history, subject login codes and attempts, erasure fields on subjects and items.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 20:22:47.218169+00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('login_attempt',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=False),
    sa.Column('ip_hash', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempt'))
    )
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempt_email_hash_at', ['email_hash', 'at'], unique=False)
        batch_op.create_index('ix_login_attempt_ip_hash_at', ['ip_hash', 'at'], unique=False)

    op.create_table('login_code',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_login_code_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_code'))
    )
    with op.batch_alter_table('login_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_code_email_hash'), ['email_hash'], unique=False)

    op.create_table('rights_request',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('purpose', sa.String(length=64), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('extended', sa.Boolean(), nullable=False),
    sa.Column('filed_by', sa.String(length=220), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['purpose'], ['purpose.code'], name=op.f('fk_rights_request_purpose_purpose')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_rights_request_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rights_request'))
    )
    with op.batch_alter_table('rights_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rights_request_received_at'), ['received_at'], unique=False)
        batch_op.create_index('ix_rights_request_status_due_at', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_rights_request_subject_id'), ['subject_id'], unique=False)

    op.create_table('rights_request_event',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['rights_request.id'], name=op.f('fk_rights_request_event_request_id_rights_request'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rights_request_event'))
    )
    with op.batch_alter_table('rights_request_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rights_request_event_request_id'), ['request_id'], unique=False)

    with op.batch_alter_table('personal_data_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retained_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('retention_reason', sa.Text(), nullable=True))

    with op.batch_alter_table('subject', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('subject', schema=None) as batch_op:
        batch_op.drop_column('erased_at')

    with op.batch_alter_table('personal_data_item', schema=None) as batch_op:
        batch_op.drop_column('retention_reason')
        batch_op.drop_column('retained_until')

    with op.batch_alter_table('rights_request_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rights_request_event_request_id'))

    op.drop_table('rights_request_event')
    with op.batch_alter_table('rights_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rights_request_subject_id'))
        batch_op.drop_index('ix_rights_request_status_due_at')
        batch_op.drop_index(batch_op.f('ix_rights_request_received_at'))

    op.drop_table('rights_request')
    with op.batch_alter_table('login_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_code_email_hash'))

    op.drop_table('login_code')
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_ip_hash_at')
        batch_op.drop_index('ix_login_attempt_email_hash_at')

    op.drop_table('login_attempt')
