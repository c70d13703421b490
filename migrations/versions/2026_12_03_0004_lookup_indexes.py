"""Candidate look-ups led by each blocking rule's equalities: date-of-birth rules get
(dob_tok, ...) indexes, the family-birthday index takes the rule's given-name sound too;
single-column name, date and postcode indexes no rule used are dropped

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: As of this revision (later changes to models.LOOKUP_INDEXES get their own migration).
DROPPED = ("given_name_tok", "family_name_tok", "dob_tok", "postcode_tok")
FAMILY_BIRTHDAY = "ix_record_versions_family_birthday"
ADDED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ix_record_versions_dob_family_sound", ("dob_tok", "family_name_dm")),
    ("ix_record_versions_dob_given_sound", ("dob_tok", "given_name_dm")),
    ("ix_record_versions_dob_postcode", ("dob_tok", "postcode_tok")),
    (FAMILY_BIRTHDAY, ("family_name_tok", "dob_md_tok", "given_name_dm")),
)


def upgrade() -> None:
    for column in DROPPED:
        op.drop_index(f"ix_record_versions_{column}", table_name="record_versions")
    op.drop_index(FAMILY_BIRTHDAY, table_name="record_versions")
    for name, columns in ADDED:
        op.create_index(name, "record_versions", list(columns), unique=False)


def downgrade() -> None:
    for name, _ in reversed(ADDED):
        op.drop_index(name, table_name="record_versions")
    op.create_index(
        FAMILY_BIRTHDAY, "record_versions", ["family_name_tok", "dob_md_tok"], unique=False
    )
    for column in DROPPED:
        op.create_index(f"ix_record_versions_{column}", "record_versions", [column], unique=False)
