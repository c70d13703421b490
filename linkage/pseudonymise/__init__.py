"""Agency-side pseudonymiser: validates raw records and replaces identifiers by keyed encodings."""

from linkage.pseudonymise.encoder import RecordEncoder, Rejected
from linkage.pseudonymise.files import PseudonymiseSummary, pseudonymise_file, rejects_path
from linkage.pseudonymise.keys import (
    LinkageKey,
    generate_key,
    key_id_for,
    read_key_file,
    write_key_file,
)

__all__ = [
    "LinkageKey",
    "PseudonymiseSummary",
    "RecordEncoder",
    "Rejected",
    "generate_key",
    "key_id_for",
    "pseudonymise_file",
    "read_key_file",
    "rejects_path",
    "write_key_file",
]
