"""The look-up indexes of identifiers most records lack (NHS number, UPN, local authority child
id) leave out the versions without one: a large load sorts and writes fewer entries, and a
version without the identifier costs its index nothing.

Indexes left out by a load that deferred them (`linkage.store.lookup_indexes`) are not made
here: the run or `cci serve` that builds the missing look-up indexes makes them partial.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 05:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: As of this revision (later changes to models.SPARSE_LOOKUPS get their own migration).
COLUMNS = ("nhs_number_enc", "upn_tok", "la_child_id_tok")


def _present() -> set[str]:
    return {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("record_versions")}


def _remake(partial: bool) -> None:
    present = _present()
    for column in COLUMNS:
        name = f"ix_record_versions_{column}"
        if name not in present:
            continue
        op.drop_index(name, table_name="record_versions")
        held = sa.text(f"{column} IS NOT NULL") if partial else None
        op.create_index(name, "record_versions", [column], sqlite_where=held, postgresql_where=held)


def upgrade() -> None:
    _remake(partial=True)


def downgrade() -> None:
    _remake(partial=False)
