"""Properties of the encodings: what must agree, what must not, and unlinkability across keys."""

from __future__ import annotations

import csv

from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.contract import PSEUDONYMISED_COLUMN_NAMES
from linkage.pseudonymise import LinkageKey, RecordEncoder, generate_key

KEY_A = LinkageKey(secret=bytes(range(32)))
KEY_B = LinkageKey(secret=bytes(range(1, 33)))
ENC_A = RecordEncoder(KEY_A)
ENC_A2 = RecordEncoder(LinkageKey(secret=bytes(range(32))))
ENC_B = RecordEncoder(KEY_B)


def record(**overrides: str) -> dict[str, str]:
    base = {
        "source_system": "health",
        "record_id": "H1",
        "nhs_number": "9434765919",
        "upn": "A801200300012",
        "la_child_id": "LA-77",
        "given_name": "William",
        "middle_names": "John",
        "family_name": "Smith",
        "date_of_birth": "2015-03-07",
        "sex": "M",
        "postcode": "LS6 1AB",
    }
    return base | overrides


def encoded(encoder: RecordEncoder = ENC_A, **overrides: str) -> dict[str, object]:
    encoded_record, _ = encoder.encode(record(**overrides))
    values = encoded_record.values()
    line = next(csv.reader([encoded_record.csv_line()]))
    assert line == ["" if v is None else _csv_text(v) for v in values]
    return dict(zip(PSEUDONYMISED_COLUMN_NAMES, values, strict=True))


def _csv_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return str(value)


def dice(a: dict[str, object], b: dict[str, object], left: str, right: str) -> float:
    """Dice coefficient of two Bloom filters, counting bits as SQL's bit_count on BIGINT does."""

    def words(row: dict[str, object], prefix: str) -> list[int]:
        return [int(row[f"{prefix}_bf{i}"]) & ((1 << 64) - 1) for i in range(1, 5)]  # type: ignore[call-overload]

    wa, wb = words(a, left), words(b, right)
    common = sum((x & y).bit_count() for x, y in zip(wa, wb, strict=True))
    return 2 * common / (sum(x.bit_count() for x in wa) + sum(y.bit_count() for y in wb))


names = st.text(alphabet=st.characters(categories=["Lu", "Ll"]), min_size=1, max_size=20).filter(
    lambda s: any(c.isascii() for c in s)
)


@settings(deadline=None, max_examples=200)
@given(given_name=names, family_name=names)
def test_deterministic_under_one_key(given_name: str, family_name: str) -> None:
    a = encoded(ENC_A, given_name=given_name, family_name=family_name)
    b = encoded(ENC_A2, given_name=given_name, family_name=family_name)
    assert a == b


@settings(deadline=None, max_examples=200)
@given(given_name=names, family_name=names)
def test_unlinkable_across_keys(given_name: str, family_name: str) -> None:
    a = encoded(ENC_A, given_name=given_name, family_name=family_name)
    b = encoded(ENC_B, given_name=given_name, family_name=family_name)
    clear = {"source_system", "record_id", "encoding_version", "sex", "restricted"}
    for column in PSEUDONYMISED_COLUMN_NAMES:
        if column in clear or a[column] is None or "_bf" in column:
            continue
        assert a[column] != b[column], column
    for name in ("given_name", "family_name"):  # a short name may leave one word empty
        bloom = [f"{name}_bf{i}" for i in range(1, 5)]
        assert [a[c] for c in bloom] != [b[c] for c in bloom]


def test_exact_agreement_survives_case_accents_and_punctuation() -> None:
    a = encoded(given_name="zoë", family_name="O'Brien")
    b = encoded(given_name="ZOE", family_name="obrien")
    assert a["given_name_tok"] == b["given_name_tok"]
    assert a["family_name_tok"] == b["family_name_tok"]


def test_phonetic_agreement() -> None:
    a, b = encoded(family_name="Smith"), encoded(family_name="Smyth")
    assert a["family_name_tok"] != b["family_name_tok"]
    assert a["family_name_dm"] == b["family_name_dm"]


def test_short_names_and_transliterations_share_a_canonical_form() -> None:
    for left, right in [("Will", "William"), ("Bill", "Will"), ("Mohammed", "Muhammad"),
                        ("Liz", "Elizabeth"), ("Aisha", "Ayesha")]:  # fmt: skip
        a, b = encoded(given_name=left), encoded(given_name=right)
        assert set(a["given_name_canon"]) & set(b["given_name_canon"]), (left, right)  # type: ignore[arg-type]
    a, b = encoded(given_name="John"), encoded(given_name="James")
    assert not set(a["given_name_canon"]) & set(b["given_name_canon"])  # type: ignore[arg-type]


def test_bloom_dice_is_graded() -> None:
    base = encoded(family_name="Richardson")
    typo = encoded(family_name="Richardsen")
    other = encoded(family_name="Okonkwo")
    assert dice(base, base, "family_name", "family_name") == 1.0
    assert dice(base, typo, "family_name", "family_name") > 0.75
    assert dice(base, other, "family_name", "family_name") < 0.3


def test_given_family_swap_is_detectable() -> None:
    a = encoded(given_name="Amir", family_name="Khan")
    b = encoded(given_name="Khan", family_name="Amir")
    assert a["given_name_tok"] == b["family_name_tok"]
    assert a["family_name_tok"] == b["given_name_tok"]
    assert dice(a, b, "given_name", "family_name") == 1.0


def test_date_of_birth_levels() -> None:
    a = encoded(date_of_birth="2015-03-07")
    swapped = encoded(date_of_birth="2015-07-03")
    day_wrong = encoded(date_of_birth="2015-03-08")
    year_wrong = encoded(date_of_birth="2014-03-07")
    assert a["dob_swap_tok"] == swapped["dob_tok"] and a["dob_tok"] != swapped["dob_tok"]
    assert a["dob_ym_tok"] == day_wrong["dob_ym_tok"] and a["dob_md_tok"] != day_wrong["dob_md_tok"]
    assert a["dob_md_tok"] == year_wrong["dob_md_tok"]
    assert encoded(date_of_birth="2015-03-03")["dob_swap_tok"] is None  # day == month
    assert encoded(date_of_birth="2015-03-17")["dob_swap_tok"] is None  # day > 12


def test_postcode_levels() -> None:
    a, sector, district = (
        encoded(postcode="LS6 1AB"),
        encoded(postcode="ls61zz"),
        encoded(postcode="LS6 3AB"),
    )
    assert a["postcode_tok"] != sector["postcode_tok"]
    assert a["postcode_sector_tok"] == sector["postcode_sector_tok"]
    assert a["postcode_sector_tok"] != district["postcode_sector_tok"]
    assert a["postcode_district_tok"] == district["postcode_district_tok"]


def test_missing_values_are_never_encoded() -> None:
    a = encoded(nhs_number="", upn="", la_child_id="", postcode="", middle_names="", sex="")
    for column in ("nhs_number_enc", "upn_tok", "la_child_id_tok", "postcode_tok",
                   "middle_names_tok", "sex"):  # fmt: skip
        assert a[column] is None


def test_invalid_optional_values_are_blanked_with_a_warning() -> None:
    encoded_record, warnings = ENC_A.encode(record(nhs_number="9434765918", postcode="nowhere"))
    row = dict(zip(PSEUDONYMISED_COLUMN_NAMES, encoded_record.values(), strict=True))
    assert row["nhs_number_enc"] is None and row["postcode_tok"] is None
    assert len(warnings) == 2
    assert not any("9434765918" in w or "nowhere" in w for w in warnings)


def test_nhs_number_round_trips_through_the_key() -> None:
    a = encoded()
    assert KEY_A.reveal_nhs_number(a["nhs_number_enc"]) == "9434765919"  # type: ignore[arg-type]
    assert encoded()["nhs_number_enc"] == a["nhs_number_enc"]  # deterministic
    key = generate_key()
    assert key.key_id != KEY_A.key_id
