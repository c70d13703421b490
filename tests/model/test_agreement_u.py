"""u of an identifier's agreement from its token space: the chance that two records drawn at
random hold the same value (`linkage.model.training.agreement_u`)."""

from __future__ import annotations

from fractions import Fraction

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.model.training import agreement_u


def test_shares_of_the_non_null_values_squared() -> None:
    # Values 1, 1, 2, 3 (and two nulls): (2/4)^2 + (1/4)^2 + (1/4)^2 = 6/16.
    values = pa.chunked_array([[1, None, 1], [2, 3, None]], pa.int64())
    assert agreement_u(values) == 6 / 16


@pytest.mark.parametrize("values", [[], [None, None], [7, 7, None]])
def test_none_below_two_distinct_values(values: list[int | None]) -> None:
    assert agreement_u(pa.array(values, pa.int64())) is None


@settings(deadline=None, max_examples=50)
@given(st.lists(st.integers(-5, 5) | st.none(), max_size=60))
def test_equals_the_exact_sum(values: list[int | None]) -> None:
    present = [v for v in values if v is not None]
    counts = [present.count(v) for v in set(present)]
    expected = (
        float(Fraction(sum(c * c for c in counts), len(present) ** 2)) if len(counts) > 1 else None
    )
    assert agreement_u(pa.array(values, pa.int64())) == expected
