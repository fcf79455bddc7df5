"""Property tests for funml_lib.claim: only a real boolean is a verdict, and NaN never confirms a sentence.

Generated cases (hypothesis, derandomized so a failure reproduces): 300 non-boolean values of many
kinds x 3 modes, 100 real booleans x 3 modes, 150 measured-value sets holding a NaN.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funml_lib.claims import ClaimFailed, ClaimWarning, claim

SENTENCE = "the sparse code is sparser than the plain one"
SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

TORCH_DTYPES = [torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool]
NUMPY_DTYPES = [np.float64, np.int64, np.bool_]


@st.composite
def tensors(draw, allow_0d_bool: bool) -> torch.Tensor:
    dtype = draw(st.sampled_from(TORCH_DTYPES))
    shape = draw(st.sampled_from([(), (1,), (2,), (1, 1), (0,)]))
    if dtype == torch.bool and shape == () and not allow_0d_bool:
        shape = (1,)  # a 1-element boolean tensor is not a 0-d one: refused too
    value = draw(st.sampled_from([0, 1, float("nan")])) if dtype.is_floating_point else draw(st.integers(0, 1))
    return torch.full(shape, value, dtype=dtype)


@st.composite
def arrays(draw) -> np.ndarray:
    dtype = draw(st.sampled_from(NUMPY_DTYPES))
    shape = draw(st.sampled_from([(1,), (2,), (0,)] + ([()] if dtype != np.bool_ else [])))
    return np.zeros(shape, dtype=dtype)


scalars = st.one_of(st.booleans(), st.floats(allow_nan=True), st.integers(), st.text(max_size=8),
                    st.none())
not_booleans = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(float("nan")),
    st.integers(),
    st.text(max_size=12),
    st.sampled_from(["False", "True", "", "0", "nan"]),
    st.none(),
    st.tuples(scalars, scalars),
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
    st.sets(st.integers(), max_size=2),
    st.builds(complex, st.floats(allow_nan=False), st.floats(allow_nan=False)),
    st.sampled_from([np.float64("nan"), np.float32(0.0), np.int64(1), np.int8(0), b"True", 1j]),
    tensors(allow_0d_bool=False),
    arrays(),
)
real_booleans = st.one_of(
    st.booleans(),
    st.builds(np.bool_, st.booleans()),
    st.builds(lambda b: np.array(b), st.booleans()),
    st.builds(lambda b: torch.tensor(b), st.booleans()),
    st.builds(lambda a, b: torch.tensor(a) < torch.tensor(b), st.floats(-1, 1), st.floats(-1, 1)),
)


@pytest.mark.parametrize("mode", ["strict", "warn", "skip"])
@settings(max_examples=300, **SETTINGS)
@given(value=not_booleans)
def test_anything_but_a_boolean_is_a_type_error_naming_the_sentence(monkeypatch, mode, value):
    monkeypatch.setenv("FUNML_CLAIMS", mode)
    with pytest.raises(TypeError, match=re.escape(f"claim {SENTENCE!r}: holds must be a boolean")):
        claim(value, SENTENCE, a=1.0)


@pytest.mark.parametrize("mode", ["strict", "warn", "skip"])
@settings(max_examples=100, **SETTINGS)
@given(value=real_booleans)
def test_a_real_boolean_is_the_verdict(monkeypatch, capsys, mode, value):
    monkeypatch.setenv("FUNML_CLAIMS", mode)
    truth = bool(value)
    if mode == "skip":
        assert claim(value, SENTENCE) is True
        assert "claim not checked" in capsys.readouterr().out
    elif truth:
        assert claim(value, SENTENCE) is True
    elif mode == "strict":
        with pytest.raises(ClaimFailed, match=re.escape(SENTENCE)):
            claim(value, SENTENCE)
    else:
        with pytest.warns(ClaimWarning, match=re.escape(SENTENCE)):
            assert claim(value, SENTENCE) is False


nan_values = st.one_of(
    st.just(float("nan")),
    st.just(np.float64("nan")),
    st.builds(lambda n: torch.full((n,), float("nan")), st.integers(1, 3)),
    st.builds(lambda n: torch.tensor([0.5] * n + [float("nan")]), st.integers(0, 3)),
    st.builds(lambda n: np.array([1.0] * n + [math.nan]), st.integers(0, 3)),
    st.builds(lambda v: {"a": 1.0, "b": v}, st.just(float("nan"))),
    st.builds(lambda v: [0.1, v], st.just(float("nan"))),
)


@settings(max_examples=150, **SETTINGS)
@given(bad=nan_values, others=st.dictionaries(st.sampled_from(["x", "y"]), st.floats(-9, 9), max_size=2),
       exact=st.booleans())
def test_nan_among_the_measured_numbers_never_makes_a_claim_hold(monkeypatch, bad, others, exact):
    # the comparison a != b with a NaN is True: the NaN in the measured numbers must still win
    monkeypatch.setenv("FUNML_CLAIMS", "strict")
    with pytest.raises(ClaimFailed, match=re.escape("NaN in measured_value")):
        claim(True, SENTENCE, exact=exact, **others, measured_value=bad)
    monkeypatch.setenv("FUNML_CLAIMS", "warn")
    if exact:
        return
    with pytest.warns(ClaimWarning, match="NaN in measured_value"):
        assert claim(True, SENTENCE, **others, measured_value=bad) is False


def test_the_issue_cases_exactly(monkeypatch):
    monkeypatch.setenv("FUNML_CLAIMS", "strict")
    for value, got in [((False, False), "tuple (False, False)"), ([False], "list [False]"),
                       ("False", "str 'False'"), (float("nan"), "float nan"),
                       (torch.tensor([True]), "a Tensor of dtype torch.bool and shape (1,)"),
                       (torch.tensor(1.0), "a Tensor of dtype torch.float32 and shape ()")]:
        with pytest.raises(TypeError) as err:
            claim(value, "x is small")
        assert str(err.value) == ("claim 'x is small': holds must be a boolean (a comparison such as a < b, "
                                  "a numpy.bool_ or a 0-d boolean tensor such as (x < y).all()), got " + got)
    a = float("nan")
    with pytest.raises(ClaimFailed) as err:
        claim(a != 1.0, "a differs from one", a=a)
    assert str(err.value) == "the text says 'a differs from one', but this run measured a = nan; NaN in a"
