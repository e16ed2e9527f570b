"""The audit chain is keyed (HMAC with a key outside the database), its chains are registered, and signed checkpoints of every head are kept.

Each event records the id of the audit key its MAC was made with. Events written before this revision keep
no key id: `privacy audit verify` checks them as legacy SHA-256 links, accepted only before any keyed event
of their chain and, once a checkpoint exists, only up to the head that the first checkpoint sealed. The
registry of chains and the checkpoints live outside the database (PRIVACY_AUDIT_CHECKPOINT_DIR), so this
revision adds only the column.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 05:00:00.000000+00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Keyed events keep their MACs in `hash`: the previous release's verify would report them as broken.
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_column('key_id')
