"""CCI format: random, check character, never an NHS number."""

import os
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.identity.cci import ALPHABET, LETTERS, check_character, new_cci, normalise_cci
from linkage.pseudonymise.normalise import normalise_nhs_number


def test_new_ccis_are_valid_distinct_and_not_nhs_numbers() -> None:
    values = {new_cci() for _ in range(5000)}
    assert len(values) == 5000
    for value in values:
        assert normalise_cci(value) == value
        assert normalise_nhs_number(value) is None
        assert not value[0].isdigit()


def test_input_forms_are_normalised() -> None:
    value = new_cci()
    assert normalise_cci(f"{value[:4]}-{value[4:8]}-{value[8:]}".lower()) == value
    assert normalise_cci("9434765919") is None


ccis = st.builds(
    lambda first, rest: first + rest + check_character(first + rest),
    st.sampled_from(LETTERS),
    st.text(alphabet=ALPHABET, min_size=9, max_size=9),
)


@settings(deadline=None, max_examples=500)
@given(ccis, st.data())
def test_every_single_substitution_is_detected(value: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != value[position]))
    assert normalise_cci(value[:position] + replacement + value[position + 1 :]) is None


@settings(deadline=None, max_examples=500)
@given(ccis, st.data())
def test_every_adjacent_transposition_is_detected(value: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(value) - 2))
    a, b = value[position], value[position + 1]
    if a == b:
        return
    swapped = value[:position] + b + a + value[position + 2 :]
    assert normalise_cci(swapped) is None


def test_a_forked_child_does_not_repeat_its_parents_draws() -> None:
    """CCIs come from a block of CSPRNG bytes; a child forked after the block was read must
    read its own, or two worker processes would hand out the same CCIs."""
    new_cci()  # the parent now holds a part-used block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next CCIs and leave at once
        os.close(read)
        os.write(write, " ".join(new_cci() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {new_cci() for _ in range(50)}
    assert len(child) == 50
    assert not child & parent


def test_draws_cover_the_first_symbol_evenly() -> None:
    """The first symbol is drawn from the 21 letters: rejection keeps them equally likely."""
    counts = Counter(new_cci()[0] for _ in range(21_000))
    assert set(counts) == set(LETTERS)
    assert max(counts.values()) < 1_300 and min(counts.values()) > 700
