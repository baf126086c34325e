"""sessions running when next_check_at was added get a due check

Revision ID: 3f1c2a7d9e10
Revises: e458d97fce54
Create Date: 2026-11-22 01:30:00

Revision b9b1af0d54db added infusions.next_check_at (when the time-based rules of a session
are next due) empty for every existing row, so sessions in progress or in recovery at that
upgrade were never judged by a poll. Their next check is made due at once (the time they
started): the first poll judges them and sets the real next check.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3f1c2a7d9e10"
down_revision: str | None = "e458d97fce54"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE infusions SET next_check_at = COALESCE(started_at, created_at) "
        "WHERE next_check_at IS NULL AND status IN ('in_progress', 'recovery')"
    )


def downgrade() -> None:
    pass  # a due check is what the application sets itself; nothing to undo
