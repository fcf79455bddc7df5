"""Checks for a chapter's parameters cell, run right after it: fail early, in the notebook's words.

    check_parameters(n_train=n_train, epochs=epochs, rho=rho, device=device)

Every name a chapter uses has one allowed range here, so a bad value stops the notebook before any
data is loaded or model trained, with a message naming the parameter as the notebook spells it.
"""
from __future__ import annotations

import math
import re
from numbers import Integral, Real
from typing import Callable

from funml_lib._validate import env_flag

# name -> (kind, low, high, open_low, open_high)  kind: int | float | ints | floats
_INT, _FLOAT, _INTS, _FLOATS = "int", "float", "list of ints", "list of numbers"
RANGES: dict[str, tuple[str, float, float, bool, bool]] = {
    # data
    "n_train": (_INT, 1, 60_000, False, False),
    "n_test": (_INT, 1, 10_000, False, False),
    "n_show": (_INT, 1, 100, False, False),
    "n_labels": (_INT, 10, 60_000, False, False),
    "n_parts": (_INT, 1, 10_000, False, False),
    "seed": (_INT, 0, 2**32 - 1, False, False),
    # optimisation
    "epochs": (_INT, 1, 1000, False, False),
    "conv_epochs": (_INT, 1, 1000, False, False),
    "overcomplete_epochs": (_INT, 1, 1000, False, False),
    "epochs_2d": (_INT, 1, 1000, False, False),
    "probe_epochs": (_INT, 1, 1000, False, False),
    "sweep_epochs": (_INT, 1, 1000, False, False),
    "batch_size": (_INT, 1, 60_000, False, False),
    "lr": (_FLOAT, 0.0, 1.0, True, False),
    "overcomplete_lr": (_FLOAT, 0.0, 1.0, True, False),
    "warmup": (_FLOAT, 0.0, 1.0, False, False),
    # architectures
    "latent_dim": (_INT, 1, 784, False, False),
    "latent_dims": (_INTS, 1, 784, False, False),
    "conv_latent_dim": (_INT, 1, 784, False, False),
    "hidden_dim": (_INT, 1, 10_000, False, False),
    "overcomplete_dim": (_INT, 1, 10_000, False, False),
    "code_dim": (_INT, 1, 10_000, False, False),
    # sparsity
    "rho": (_FLOAT, 0.0, 1.0, True, True),
    "threshold": (_FLOAT, 0.0, 1.0, True, True),
    "kl_lams": (_FLOATS, 0.0, math.inf, False, True),
    "l1_lams": (_FLOATS, 0.0, math.inf, False, True),
    "sweep_lams": (_FLOATS, 0.0, math.inf, False, True),
    "kl_lam": (_FLOAT, 0.0, math.inf, False, True),
    "l1_lam": (_FLOAT, 0.0, math.inf, False, True),
    # corruption
    "sigma": (_FLOAT, 0.0, 10.0, False, False),
    "sigmas": (_FLOATS, 0.0, 10.0, False, False),
    "mask_fractions": (_FLOATS, 0.0, 1.0, False, False),
    # estimators and the VAE
    # a Monte Carlo variance needs two draws; 10**6 draws of a small K already cost tens of MB
    "n_mc": (_INT, 2, 1_000_000, False, False),
    "grad_samples": (_INT, 2, 2**24, False, False),
    "q_mu": (_FLOAT, -100.0, 100.0, False, False),
    "q_sigma": (_FLOAT, 0.0, 100.0, True, False),
    "beta": (_FLOAT, 0.0, 100.0, False, False),
    "n_is": (_INT, 1, 10_000, False, False),
    "k": (_INT, 1, 100_000, False, False),
}
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def _interval(low: float, high: float, open_low: bool, open_high: bool) -> str:
    hi = "inf" if math.isinf(high) else f"{high:g}" if high < 1e6 else str(int(high))
    return f"{'(' if open_low else '['}{low:g}, {hi}{')' if open_high or math.isinf(high) else ']'}"


def _check_number(name: str, value: object, kind: str, bounds: tuple) -> None:
    low, high, open_low, open_high = bounds
    what = "an integer" if kind in (_INT, _INTS) else "a number"
    where = _interval(low, high, open_low, open_high)
    is_int = isinstance(value, Integral) and not isinstance(value, bool)
    ok_type = is_int if kind in (_INT, _INTS) else isinstance(value, Real) and not isinstance(value, bool)
    if not ok_type or (not is_int and not math.isfinite(float(value))):
        raise ValueError(f"parameter {name} must be {what} in {where}, got {value!r}")
    v = float(value)
    if v < low or v > high or (open_low and v == low) or (open_high and v == high):
        raise ValueError(f"parameter {name} must be {what} in {where}, got {value!r}")


def check_parameter(name: str, value: object) -> None:
    """Raise ValueError naming `name` when `value` is outside its allowed range."""
    if name == "device":
        if value is not None and not (isinstance(value, str) and _DEVICE.match(value)):
            raise ValueError(f"parameter device must be None (pick automatically), 'cpu', 'cuda', "
                             f"'cuda:N' or 'mps', got {value!r}")
        return
    if name not in RANGES:
        raise KeyError(f"check_parameters has no range for parameter {name!r}; add it to "
                       "funml_lib.parameters.RANGES")
    kind, *bounds = RANGES[name]
    if kind in (_INTS, _FLOATS):
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"parameter {name} must be a non-empty list, got {value!r}")
        for item in value:
            try:
                _check_number(name, item, kind, tuple(bounds))
            except ValueError:
                what = "integers" if kind == _INTS else "numbers"
                raise ValueError(f"parameter {name} must hold {what} in "
                                 f"{_interval(*bounds)}, got {value!r}") from None
        return
    _check_number(name, value, kind, tuple(bounds))


# Combinations that pass every range but cannot work, refused before any data is loaded. Each rule:
# (chapters it applies to (None: any chapter that has the names), the names it needs, the test that
# must hold, the message; the message names the parameter and the allowed values).
Rule = tuple[frozenset[int] | None, tuple[str, ...], Callable[..., bool], Callable[..., str]]
RULES: list[Rule] = [
    (None, ("n_labels", "n_train"), lambda n_labels, n_train: n_labels <= n_train,
     lambda n_labels, n_train: f"parameter n_labels must be at most n_train ({n_train}): the labelled digits "
                               f"are taken from the training digits, got {n_labels}"),
    (None, ("n_parts", "hidden_dim"), lambda n_parts, hidden_dim: n_parts <= hidden_dim,
     lambda n_parts, hidden_dim: f"parameter n_parts must be at most hidden_dim ({hidden_dim}), got {n_parts}"),
    (None, ("batch_size", "n_train"), lambda batch_size, n_train: n_train >= batch_size,
     lambda batch_size, n_train: f"parameter n_train must be at least batch_size ({batch_size}): a training "
                                 f"set smaller than one batch gives no full step, got {n_train}"),
    (None, ("n_train",), lambda n_train: n_train >= 10,
     lambda n_train: f"parameter n_train must be at least 10 (one digit per class at the very least; "
                     f"means, variances and probes over fewer are not meaningful), got {n_train}"),
    (frozenset({1}), ("latent_dims",), lambda latent_dims: len(set(latent_dims)) >= 2,
     lambda latent_dims: f"parameter latent_dims must hold at least two different code sizes in chapter 1 "
                         f"(it compares a smaller code with a larger one), got {latent_dims}"),
    (frozenset({3}), ("sigma",), lambda sigma: sigma > 0,
     lambda sigma: f"parameter sigma must be above 0 in chapter 3 (a denoiser needs noise), got {sigma}"),
    (frozenset({3}), ("n_train",), lambda n_train: n_train >= 100,
     lambda n_train: f"parameter n_train must be at least 100 in chapter 3 (the covariance of the closed "
                     f"form and the linear probe need many digits), got {n_train}"),
    (frozenset({3}), ("n_test",), lambda n_test: n_test >= 10,
     lambda n_test: f"parameter n_test must be at least 10 in chapter 3 (figures show 10 test digits), "
                    f"got {n_test}"),
]


def _chapter_number(chapter: object) -> int:
    """0..5 from 3, "03" or a notebook stem like "03_denoising_autoencoders"."""
    if isinstance(chapter, Integral) and not isinstance(chapter, bool) and 0 <= chapter <= 5:
        return int(chapter)
    if isinstance(chapter, str) and re.match(r"^0?[0-5](_\w+)?$", chapter.strip()):
        return int(chapter.strip().split("_")[0])
    raise ValueError(f"chapter must be a chapter number 0..5 (or a name like '03_denoising_autoencoders'), "
                     f"got {chapter!r}")


def check_parameters(chapter: int | str | None = None, **params: object) -> None:
    """Check every parameter of a chapter against its allowed range (see RANGES), then the combinations.

    chapter: the chapter's number (e.g. check_parameters(chapter=3, n_train=n_train, ...)); the rules
    in RULES that concern that chapter, and those for any chapter, refuse combinations that would fail
    later (after training), each by a message naming the parameter and what it must be.
    """
    number = None if chapter is None else _chapter_number(chapter)
    for name, value in params.items():
        check_parameter(name, value)
    # a chapter's own rules first: they are the tighter ones (chapter 3 needs 100 digits, not 10)
    for chapters, names, holds, message in sorted(RULES, key=lambda rule: rule[0] is None):
        if (chapters is None or number in chapters) and all(n in params for n in names):
            values = {n: params[n] for n in names}
            if not holds(**values):
                raise ValueError(message(**values))


def grading_run() -> bool:
    """True in nbgrader's autograde run (FUNML_GRADING=1): chapters then use small, quick settings."""
    return env_flag("FUNML_GRADING")
