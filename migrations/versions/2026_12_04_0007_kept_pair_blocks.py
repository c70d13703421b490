"""Kept pairs and the versions they were scored at as Parquet blocks, replaced whole by each
run, instead of rows (scored_pairs, scored_records). What those rows held is dropped: the next
run after this migration scores every pair once, as a first run does, and keeps them anew.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 22:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kept_pair_blocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("part", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("parquet", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("part IN ('pairs', 'versions')", name=op.f("ck_kept_pair_blocks_part")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kept_pair_blocks")),
    )
    op.drop_table("scored_records")
    op.drop_index("ix_scored_pairs_record_pk_r", table_name="scored_pairs")
    op.drop_table("scored_pairs")


def downgrade() -> None:
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
    op.drop_table("kept_pair_blocks")
