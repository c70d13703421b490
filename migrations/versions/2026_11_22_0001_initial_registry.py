"""initial registry

Revision ID: 0001
Revises:
Create Date: 2026-11-22 16:50:09.562136
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: record_versions columns indexed for candidate look-ups (as of this revision).
BLOCKING_INDEXED = (
    "nhs_number_enc",
    "upn_tok",
    "given_name_tok",
    "family_name_tok",
    "dob_tok",
    "postcode_tok",
)


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_clients_key_hash")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=256), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "events",
        sa.Column(
            "cursor",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("cci", sa.String(length=16), nullable=False),
        sa.Column("related_cci", sa.String(length=16), nullable=True),
        sa.Column("record_pk", sa.BigInteger(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cursor", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "identifiers",
        sa.Column("cci", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("successor_cci", sa.String(length=16), nullable=True),
        sa.Column("nhs_anchored", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'superseded', 'retired')", name=op.f("ck_identifiers_status")
        ),
        sa.ForeignKeyConstraint(
            ["successor_cci"],
            ["identifiers.cci"],
            name=op.f("fk_identifiers_successor_cci_identifiers"),
        ),
        sa.PrimaryKeyConstraint("cci", name=op.f("pk_identifiers")),
    )
    op.create_table(
        "linkage_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_linkage_keys")),
    )
    op.create_table(
        "models",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("settings_json", sa.JSON(), nullable=False),
        sa.Column("summary_json", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_models")),
    )
    op.create_table(
        "source_systems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('health', 'education', 'social_care', 'other')",
            name=op.f("ck_source_systems_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_systems")),
        sa.UniqueConstraint("code", name=op.f("uq_source_systems_code")),
    )
    op.create_table(
        "api_client_sources",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("source_system_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_clients.id"],
            name=op.f("fk_api_client_sources_client_id_api_clients"),
        ),
        sa.ForeignKeyConstraint(
            ["source_system_id"],
            ["source_systems.id"],
            name=op.f("fk_api_client_sources_source_system_id_source_systems"),
        ),
        sa.PrimaryKeyConstraint(
            "client_id", "source_system_id", name=op.f("pk_api_client_sources")
        ),
    )
    op.create_table(
        "linkage_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_linkage_runs_status")
        ),
        sa.ForeignKeyConstraint(
            ["model_version"], ["models.version"], name=op.f("fk_linkage_runs_model_version_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkage_runs")),
    )
    op.create_table(
        "records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_system_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(length=128), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('active', 'withdrawn')", name=op.f("ck_records_status")),
        sa.ForeignKeyConstraint(
            ["key_id"], ["linkage_keys.key_id"], name=op.f("fk_records_key_id_linkage_keys")
        ),
        sa.ForeignKeyConstraint(
            ["source_system_id"],
            ["source_systems.id"],
            name=op.f("fk_records_source_system_id_source_systems"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records")),
        sa.UniqueConstraint("source_system_id", "record_id", name="source_record"),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "record_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("cci", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "method IN ('auto', 'manual', 'realtime')", name=op.f("ck_assignments_method")
        ),
        sa.ForeignKeyConstraint(
            ["cci"], ["identifiers.cci"], name=op.f("fk_assignments_cci_identifiers")
        ),
        sa.ForeignKeyConstraint(
            ["record_pk"], ["records.id"], name=op.f("fk_assignments_record_pk_records")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["linkage_runs.id"], name=op.f("fk_assignments_run_id_linkage_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index("ix_assignments_cci", ["cci"], unique=False)
        batch_op.create_index(
            "ux_assignments_current_record",
            ["record_pk"],
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )

    op.create_table(
        "decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "record_pk_l", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "record_pk_r", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "verdict IN ('same', 'different', 'unsure')", name=op.f("ck_decisions_verdict")
        ),
        sa.ForeignKeyConstraint(
            ["record_pk_l"], ["records.id"], name=op.f("fk_decisions_record_pk_l_records")
        ),
        sa.ForeignKeyConstraint(
            ["record_pk_r"], ["records.id"], name=op.f("fk_decisions_record_pk_r_records")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_table(
        "record_versions",
        sa.Column("record_pk", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("encoding_version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=True),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("nhs_number_enc", sa.Text(), nullable=True),
        sa.Column("upn_tok", sa.BigInteger(), nullable=True),
        sa.Column("la_child_id_tok", sa.BigInteger(), nullable=True),
        sa.Column("given_name_tok", sa.BigInteger(), nullable=True),
        sa.Column("given_name_dm", sa.BigInteger(), nullable=True),
        sa.Column("given_name_dm_alt", sa.BigInteger(), nullable=True),
        sa.Column("given_name_canon", sa.Text(), nullable=True),
        sa.Column("given_name_bf1", sa.BigInteger(), nullable=True),
        sa.Column("given_name_bf2", sa.BigInteger(), nullable=True),
        sa.Column("given_name_bf3", sa.BigInteger(), nullable=True),
        sa.Column("given_name_bf4", sa.BigInteger(), nullable=True),
        sa.Column("middle_names_tok", sa.BigInteger(), nullable=True),
        sa.Column("middle_name1_tok", sa.BigInteger(), nullable=True),
        sa.Column("family_name_tok", sa.BigInteger(), nullable=True),
        sa.Column("family_name_dm", sa.BigInteger(), nullable=True),
        sa.Column("family_name_dm_alt", sa.BigInteger(), nullable=True),
        sa.Column("family_name_bf1", sa.BigInteger(), nullable=True),
        sa.Column("family_name_bf2", sa.BigInteger(), nullable=True),
        sa.Column("family_name_bf3", sa.BigInteger(), nullable=True),
        sa.Column("family_name_bf4", sa.BigInteger(), nullable=True),
        sa.Column("dob_tok", sa.BigInteger(), nullable=True),
        sa.Column("dob_swap_tok", sa.BigInteger(), nullable=True),
        sa.Column("dob_ym_tok", sa.BigInteger(), nullable=True),
        sa.Column("dob_md_tok", sa.BigInteger(), nullable=True),
        sa.Column("dob_yd_tok", sa.BigInteger(), nullable=True),
        sa.Column("postcode_tok", sa.BigInteger(), nullable=True),
        sa.Column("postcode_sector_tok", sa.BigInteger(), nullable=True),
        sa.Column("postcode_district_tok", sa.BigInteger(), nullable=True),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_pk"], ["records.id"], name=op.f("fk_record_versions_record_pk_records")
        ),
        sa.PrimaryKeyConstraint("record_pk", "version", name=op.f("pk_record_versions")),
    )
    with op.batch_alter_table("record_versions", schema=None) as batch_op:
        for column in BLOCKING_INDEXED:
            batch_op.create_index(f"ix_record_versions_{column}", [column], unique=False)
    op.create_table(
        "review_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "record_pk_l", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "record_pk_r", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'decided', 'obsolete')", name=op.f("ck_review_items_status")
        ),
        sa.ForeignKeyConstraint(
            ["record_pk_l"], ["records.id"], name=op.f("fk_review_items_record_pk_l_records")
        ),
        sa.ForeignKeyConstraint(
            ["record_pk_r"], ["records.id"], name=op.f("fk_review_items_record_pk_r_records")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["linkage_runs.id"], name=op.f("fk_review_items_run_id_linkage_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
    )
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.create_index("ix_review_items_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_index("ix_review_items_status")

    op.drop_table("review_items")
    with op.batch_alter_table("record_versions", schema=None) as batch_op:
        for column in BLOCKING_INDEXED:
            batch_op.drop_index(f"ix_record_versions_{column}")

    op.drop_table("record_versions")
    op.drop_table("decisions")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_assignments_current_record",
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index("ix_assignments_cci")

    op.drop_table("assignments")
    op.drop_table("records")
    op.drop_table("linkage_runs")
    op.drop_table("api_client_sources")
    op.drop_table("source_systems")
    op.drop_table("models")
    op.drop_table("linkage_keys")
    op.drop_table("identifiers")
    op.drop_table("events")
    op.drop_table("audit_log")
    op.drop_table("api_clients")
