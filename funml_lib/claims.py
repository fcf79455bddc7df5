"""Claims: the sentences of a chapter's "what to notice", asserted on the run that produced them.

Each chapter ends a "what to notice" with a hidden cell tagged ``claims`` that calls `claim` once per
sentence that depends on the run. What a failed claim does is set by one switch, ``FUNML_CLAIMS``:

- ``strict`` (``make book``, CI): raise `ClaimFailed`, quoting the sentence and the measured values;
- ``warn`` (the default: Jupyter, Colab): print a warning and go on, since a student who changed the
  parameters may see something else, and that is worth knowing, not a crash;
- ``skip`` (the notebook tests' tiny parameters, nbgrader's grading run): check nothing and say so.

A claim made with ``exact=True`` is an identity that holds at any parameters (a shape, a closed form,
an inequality of the theory): it is checked in every mode, and a failure always raises, since it
means a bug rather than a changed setting.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
import torch

from funml_lib.parameters import grading_run

MODES = ("strict", "warn", "skip")


class ClaimFailed(AssertionError):
    """A sentence of the book does not hold for this run."""


class ClaimWarning(UserWarning):
    """A sentence of the book does not hold for this run (parameters changed?)."""


def claims_mode() -> str:
    """The current mode: FUNML_CLAIMS if set, 'skip' in a grading run (FUNML_GRADING=1), else 'warn'."""
    mode = os.environ.get("FUNML_CLAIMS", "").strip().lower()
    if mode:
        if mode not in MODES:
            raise ValueError(f"FUNML_CLAIMS must be one of {', '.join(MODES)}, got {mode!r}")
        return mode
    if grading_run():
        return "skip"
    return "warn"


def _measured(values: dict) -> str:
    parts = []
    for name, value in values.items():
        size = value.numel() if isinstance(value, torch.Tensor) else getattr(value, "size", None)
        if hasattr(value, "item") and size == 1:  # one-element tensors and arrays print as numbers
            value = value.item()
        parts.append(f"{name} = {value:.4g}" if isinstance(value, float) else f"{name} = {value}")
    return ", ".join(parts)


def _truth(holds: object, statement: str) -> bool:
    """The verdict of `holds` if it is a real boolean; anything else is a TypeError naming the sentence.

    Truthiness is not a verdict: (False, False), [False] and "False" are all truthy, and a NaN float is
    truthy too, so accepting them would let a claim that cannot fail pass in strict mode.
    """
    if isinstance(holds, (bool, np.bool_)):
        return bool(holds)
    if isinstance(holds, np.ndarray) and holds.ndim == 0 and holds.dtype == np.bool_:
        return bool(holds)
    if isinstance(holds, torch.Tensor) and holds.dim() == 0 and holds.dtype == torch.bool:
        return bool(holds.item())
    if isinstance(holds, (torch.Tensor, np.ndarray)):
        got = f"a {type(holds).__name__} of dtype {holds.dtype} and shape {tuple(holds.shape)}"
    else:
        text = repr(holds)
        got = f"{type(holds).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
    raise TypeError(f"claim {statement!r}: holds must be a boolean (a comparison such as a < b, a "
                    f"numpy.bool_ or a 0-d boolean tensor such as (x < y).all()), got {got}")


def _nan_names(measured: dict) -> list[str]:
    """The measured values that hold a NaN (floats, arrays, tensors, or containers of them)."""
    def has_nan(v: object) -> bool:
        if isinstance(v, float):
            return math.isnan(v)
        if isinstance(v, torch.Tensor):
            return bool(v.is_floating_point() and torch.isnan(v).any())
        if isinstance(v, (np.ndarray, np.floating)):
            return bool(np.issubdtype(np.asarray(v).dtype, np.floating) and np.isnan(v).any())
        if isinstance(v, dict):
            return any(has_nan(x) for x in v.values())
        if isinstance(v, (list, tuple, set)):
            return any(has_nan(x) for x in v)
        return False
    return [name for name, value in measured.items() if has_nan(value)]


def claim(holds: object, statement: str, *, exact: bool = False, **measured: object) -> bool:
    """Check one sentence of the text against this run; return whether it holds.

    holds: the comparison, a real boolean: bool, numpy.bool_ or a 0-d boolean tensor (anything else,
    a tuple, a list, a string, a float, is a TypeError naming the sentence, in every mode);
    statement: the sentence as the reader sees it; exact: True for an identity that holds at any
    parameters (checked and raised in every mode); measured: the numbers it rests on, printed with the
    verdict. A NaN among the measured numbers makes the claim fail whatever `holds` says: a comparison
    with NaN (x != y, not x > y) can come out True, and a sentence about a NaN is never confirmed.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("statement must be the sentence being checked, got an empty string")
    ok = _truth(holds, statement)
    mode = "strict" if exact else claims_mode()
    detail = _measured(measured)
    if mode == "skip":
        print(f"claim not checked (FUNML_CLAIMS=skip or a grading run, small settings): {statement}")
        return True
    nans = _nan_names(measured)
    if nans:
        ok = False
        detail = f"{detail}; NaN in {', '.join(nans)}" if detail else f"NaN in {', '.join(nans)}"
    if ok:
        print(f"claim holds: {statement}" + (f" [{detail}]" if detail else ""))
        return True
    message = f"the text says {statement!r}, but this run measured {detail or 'otherwise'}"
    if mode == "strict":
        raise ClaimFailed(message)
    warnings.warn(message + ". With changed parameters this can happen; at the chapter's defaults it "
                  "holds.", ClaimWarning, stacklevel=2)
    return False
