"""Property tests for funml_lib.parameters: every value outside a parameter's range is refused by name.

Generated cases (hypothesis, derandomized): 400 (name, value) pairs drawn from every parameter of
RANGES with values inside and outside its interval and of wrong types; 100 chapter-1 code-size lists.
"""
from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funml_lib.parameters import RANGES, check_parameter, check_parameters

SETTINGS = dict(deadline=None, derandomize=True, database=None)
NAMES = sorted(RANGES)


def inside(name: str, value: object) -> bool:
    """The reference: is `value` allowed for `name`? Written from RANGES' meaning, not from the code."""
    kind, low, high, open_low, open_high = RANGES[name]
    ints = kind in ("int", "list of ints")

    def ok(v: object) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (ints and not isinstance(v, int)):
            return False
        if not math.isfinite(v):
            return False
        return (v > low if open_low else v >= low) and (v < high if open_high else v <= high)

    if kind.startswith("list"):
        return isinstance(value, (list, tuple)) and len(value) > 0 and all(ok(v) for v in value)
    return ok(value)


numbers = st.one_of(st.integers(-10, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, 0.0, 1.0, -1, 10.0, 10.5, 2**32, 2**32 - 1, 60_000, 60_001]))
values = st.one_of(numbers, st.lists(numbers, max_size=3), st.booleans(), st.none(), st.text(max_size=4))


@settings(max_examples=400, **SETTINGS)
@given(name=st.sampled_from(NAMES), value=values)
def test_a_value_is_accepted_exactly_when_it_lies_in_the_range(name, value):
    if inside(name, value):
        check_parameter(name, value)
    else:
        with pytest.raises(ValueError, match=f"^parameter {re.escape(name)} must "):
            check_parameter(name, value)


@settings(max_examples=100, **SETTINGS)
@given(dims=st.lists(st.integers(1, 784), min_size=1, max_size=4))
def test_chapter_1_needs_two_different_code_sizes(dims):
    if len(set(dims)) >= 2:
        check_parameters(chapter=1, latent_dims=dims)
    else:
        with pytest.raises(ValueError, match="^parameter latent_dims must hold at least two different"):
            check_parameters(chapter=1, latent_dims=dims)
