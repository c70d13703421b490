"""One date-of-birth look-up index, (dob_tok, family_name_dm, given_name_dm, postcode_tok),
instead of three, (dob_tok, X) for each of those columns.

The candidate look-up of the date-of-birth rules probes it once per date and checks the other
columns in the index entries, never reading a table row for an entry that does not match. Each
look-up index costs a scan and sort of the table when a large load builds it (about 0.9 s on
1M records on SQLite) and a B-tree insert for every stored version: the one index took 1.1 s to
build against 2.7 s for the three.

Indexes left out by a load that deferred them (`linkage.store.lookup_indexes`) are not made
here: the run or `cci serve` that builds the missing look-up indexes makes the new one too.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: As of this revision (later changes to models.LOOKUP_INDEXES get their own migration).
SEPARATE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ix_record_versions_dob_family_sound", ("dob_tok", "family_name_dm")),
    ("ix_record_versions_dob_given_sound", ("dob_tok", "given_name_dm")),
    ("ix_record_versions_dob_postcode", ("dob_tok", "postcode_tok")),
)
ONE = ("ix_record_versions_dob", ("dob_tok", "family_name_dm", "given_name_dm", "postcode_tok"))


def _present() -> set[str]:
    return {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("record_versions")}


def upgrade() -> None:
    present = _present()
    for name, _ in SEPARATE:
        if name in present:
            op.drop_index(name, table_name="record_versions")
    if present & {name for name, _ in SEPARATE}:
        op.create_index(ONE[0], "record_versions", list(ONE[1]), unique=False)


def downgrade() -> None:
    if ONE[0] not in _present():
        return
    op.drop_index(ONE[0], table_name="record_versions")
    for name, columns in SEPARATE:
        op.create_index(name, "record_versions", list(columns), unique=False)
