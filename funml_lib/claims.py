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

import os
import warnings

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
        if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
            value = value.item()
        parts.append(f"{name} = {value:.4g}" if isinstance(value, float) else f"{name} = {value}")
    return ", ".join(parts)


def claim(holds: object, statement: str, *, exact: bool = False, **measured: object) -> bool:
    """Check one sentence of the text against this run; return whether it holds.

    holds: the comparison (a bool, or a one-element tensor/array); statement: the sentence as the
    reader sees it; exact: True for an identity that holds at any parameters (checked and raised in
    every mode); measured: the numbers it rests on, printed with the verdict.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("statement must be the sentence being checked, got an empty string")
    mode = "strict" if exact else claims_mode()
    detail = _measured(measured)
    if mode == "skip":
        print(f"claim not checked (FUNML_CLAIMS=skip or a grading run, small settings): {statement}")
        return True
    ok = bool(holds.item() if hasattr(holds, "item") else holds)
    if ok:
        print(f"claim holds: {statement}" + (f" [{detail}]" if detail else ""))
        return True
    message = f"the text says {statement!r}, but this run measured {detail or 'otherwise'}"
    if mode == "strict":
        raise ClaimFailed(message)
    warnings.warn(message + ". With changed parameters this can happen; at the chapter's defaults it "
                  "holds.", ClaimWarning, stacklevel=2)
    return False
