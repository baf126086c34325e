"""readings and observations keep their first answer for client-id replays

Revision ID: 7c2e5b1f4a90
Revises: 3f1c2a7d9e10
Create Date: 2026-11-22 10:15:00

A replay of a client-supplied id answers the original body. Entries stored before this
revision have none kept and are answered as they now stand.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c2e5b1f4a90"
down_revision: str | None = "3f1c2a7d9e10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("readings", sa.Column("answer", sa.Text(), nullable=True))
    op.add_column("observations", sa.Column("answer", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("observations") as batch_op:
        batch_op.drop_column("answer")
    with op.batch_alter_table("readings") as batch_op:
        batch_op.drop_column("answer")
