"""The privacy center: its server-side sessions; an erased subject's address hash kept while the law keeps
some of its items (so that the person can still sign in and see them); codes that prove an address without signing anyone in (the
form for people who are not registered); rights requests filed by such people, matched to no subject.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 01:42:52.332184+00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('center_session',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_center_session_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_center_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_center_session_token_hash'))
    )
    with op.batch_alter_table('center_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_center_session_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('subject', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access_email_hash', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_subject_access_email_hash'), ['access_email_hash'], unique=False)

    with op.batch_alter_table('login_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=10), nullable=False, server_default='login'))
        batch_op.alter_column('subject_id', existing_type=sa.Uuid(), nullable=True)
    with op.batch_alter_table('login_code', schema=None) as batch_op:
        batch_op.alter_column('purpose', existing_type=sa.String(length=10), server_default=None)

    with op.batch_alter_table('rights_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requester_email', sa.String(length=320), nullable=True))
        batch_op.alter_column('subject_id', existing_type=sa.Uuid(), nullable=True)
        batch_op.create_check_constraint(
            op.f('ck_rights_request_someone'), 'subject_id IS NOT NULL OR requester_email IS NOT NULL'
        )


def downgrade() -> None:
    # What the older schema cannot hold goes: requests matched to nobody, and codes that sign nobody in.
    op.execute("DELETE FROM rights_request WHERE subject_id IS NULL")
    op.execute("DELETE FROM login_code WHERE subject_id IS NULL")
    with op.batch_alter_table('rights_request', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_rights_request_someone'), type_='check')
        batch_op.alter_column('subject_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column('requester_email')

    with op.batch_alter_table('login_code', schema=None) as batch_op:
        batch_op.alter_column('subject_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column('purpose')

    with op.batch_alter_table('subject', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subject_access_email_hash'))
        batch_op.drop_column('access_email_hash')

    with op.batch_alter_table('center_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_center_session_expires_at'))

    op.drop_table('center_session')
