"""model_term_frequencies stored in its primary key's order on SQLite (WITHOUT ROWID): a model
version's tables are then one sequential read, not a row look-up per value

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 20:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL has no such choice
    with op.batch_alter_table(
        "model_term_frequencies",
        recreate="always",
        table_kwargs={"sqlite_with_rowid": with_rowid},
    ):
        pass


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)
