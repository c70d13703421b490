"""Scored pairs and the record versions they were scored at, for incremental linkage runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 21:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scored_pairs",
        sa.Column("record_pk_l", sa.BigInteger(), nullable=False),
        sa.Column("record_pk_r", sa.BigInteger(), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("record_pk_l", "record_pk_r", name=op.f("pk_scored_pairs")),
    )
    op.create_index("ix_scored_pairs_record_pk_r", "scored_pairs", ["record_pk_r"], unique=False)
    op.create_table(
        "scored_records",
        sa.Column("record_pk", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("record_pk", name=op.f("pk_scored_records")),
    )


def downgrade() -> None:
    op.drop_table("scored_records")
    op.drop_index("ix_scored_pairs_record_pk_r", table_name="scored_pairs")
    op.drop_table("scored_pairs")
