"""Service tables: batch jobs, term-frequency tables frozen per model, event look-ups by CCI

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 20:59:53.716227
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: As of this revision (later changes to the models get their own migration).
LOOKUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ix_record_versions_la_child_id_tok", ("la_child_id_tok",)),
    ("ix_record_versions_names", ("given_name_tok", "family_name_tok")),
    ("ix_record_versions_sounds_month", ("family_name_dm", "given_name_dm", "dob_ym_tok")),
    ("ix_record_versions_family_birthday", ("family_name_tok", "dob_md_tok")),
)


def upgrade() -> None:
    op.create_table(
        "model_term_frequencies",
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("column_name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("frequency", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version"],
            ["models.version"],
            name=op.f("fk_model_term_frequencies_model_version_models"),
        ),
        sa.PrimaryKeyConstraint(
            "model_version", "column_name", "value", name=op.f("pk_model_term_frequencies")
        ),
    )
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=True),
        sa.Column("file_name", sa.String(length=256), nullable=False),
        sa.Column("file_format", sa.String(length=16), nullable=False),
        sa.Column("upload_path", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_ingested", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("rejects", sa.JSON(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')",
            name=op.f("ck_batch_jobs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_batch_jobs_client_id_api_clients")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["linkage_runs.id"], name=op.f("fk_batch_jobs_run_id_linkage_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_jobs")),
    )
    with op.batch_alter_table("batch_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_batch_jobs_status", ["status"], unique=False)

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_cci", ["cci"], unique=False)
        batch_op.create_index("ix_events_related_cci", ["related_cci"], unique=False)

    # Look-ups the real-time matcher makes for the blocking rules (models.COMPOSITE_LOOKUPS).
    for name, columns in LOOKUPS:
        op.create_index(name, "record_versions", list(columns), unique=False)


def downgrade() -> None:
    for name, _ in reversed(LOOKUPS):
        op.drop_index(name, table_name="record_versions")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_related_cci")
        batch_op.drop_index("ix_events_cci")

    with op.batch_alter_table("batch_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_batch_jobs_status")

    op.drop_table("batch_jobs")
    op.drop_table("model_term_frequencies")
