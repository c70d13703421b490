"""Validation and normalisation of raw values."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.gb import upn

from linkage.pseudonymise import normalise as norm


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("943 476 5919", "9434765919"),
        ("943-476-5919", "9434765919"),
        ("9434765919", "9434765919"),
        ("9434765918", None),  # wrong check digit
        ("943476591", None),  # too short
        ("94347659190", None),  # too long
        ("94347659AB", None),
        ("1234567890", None),  # check digit would be 10: never valid
    ],
)
def test_nhs_number(raw: str, expected: str | None) -> None:
    assert norm.normalise_nhs_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A801200300012", "A801200300012"),
        ("a801 2003 00012", "A801200300012"),
        ("B801200300012", None),  # wrong check letter
        ("A80120030001", None),  # too short
        ("A999200300012", None),  # unknown local authority number
    ],
)
def test_upn(raw: str, expected: str | None) -> None:
    assert norm.normalise_upn(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ls61ab", ("LS6 1AB", "LS6 1", "LS6")),
        (" sw1a  1aa ", ("SW1A 1AA", "SW1A 1", "SW1A")),
        ("EC1A1BB", ("EC1A 1BB", "EC1A 1", "EC1A")),
        ("M1 1AE", ("M1 1AE", "M1 1", "M1")),
        ("DN55 1PT", ("DN55 1PT", "DN55 1", "DN55")),
        ("GIR 0AA", ("GIR 0AA", "GIR 0", "GIR")),
        ("QQ1 1AA", None),  # Q never starts a postcode
        ("LS6 1CA", None),  # C is not a unit letter
        ("LS6", None),
        ("12345", None),
    ],
)
def test_postcode(raw: str, expected: tuple[str, str, str] | None) -> None:
    assert norm.normalise_postcode(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2015-03-07", date(2015, 3, 7)),
        ("2016-02-29", date(2016, 2, 29)),
        ("2015-02-29", None),  # not a leap year
        ("2019-02-30", None),
        ("2015-13-01", None),
        ("07/03/2015", None),
        ("2015-3-7", None),
        ("1899-12-31", None),
        ("2999-01-01", None),  # future
        ("", None),
    ],
)
def test_date_of_birth(raw: str, expected: date | None) -> None:
    assert norm.parse_date_of_birth(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  o'Brien-Smith ", "OBRIEN SMITH"),
        ("Zoë", "ZOE"),
        ("JOSÉ", "JOSE"),
        ("Łukasz", "LUKASZ"),
        ("Mary  Jane", "MARY JANE"),
        ("d’Arcy", "DARCY"),
        ("--", None),
        ("  ", None),
        ("123", None),
    ],
)
def test_name(raw: str, expected: str | None) -> None:
    assert norm.normalise_name(raw) == expected


def test_restricted_flag_must_be_understood() -> None:
    assert norm.parse_restricted("TRUE") is True
    assert norm.parse_restricted("") is False
    assert norm.parse_restricted("0") is False
    assert norm.parse_restricted("maybe") is None


upn_like = st.builds(
    lambda letter, la, body, last: f"{letter}{la}{body}{last}",
    st.sampled_from("ABCDEFGHJKLMNPQRTUVWXYZI"),
    st.sampled_from(["801", "802", "201", "999", "000"]),
    st.integers(10**7, 10**8 - 1).map(str),
    st.sampled_from("0123456789ABCDEFGHJKLMNPQRTUVWXYZI"),
)


@settings(deadline=None, max_examples=2000)
@given(upn_like)
def test_upn_check_agrees_with_python_stdnum(value: str) -> None:
    assert (norm.normalise_upn(value) is not None) == upn.is_valid(value)
