"""No schema change. A processor's reports are accepted only for subjects disclosed to it (docs/security.md,
"Processor reports"), which the disclosure log and the processor tasks already tell: nothing to keep
unconfirmed. The revision stays so that the chain keeps its numbers (0016 follows it).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 05:00:00.000000+00:00

"""
from collections.abc import Sequence

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
