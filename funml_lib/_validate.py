"""Argument checks shared by the library: each raises an error that names the argument and its range."""
from __future__ import annotations

import math
from numbers import Real
from typing import Iterable

import torch
from torch import Tensor


def _scalar(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (Real, Tensor)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name} must be a single number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got NaN")
    return value


def check_probability_open(name: str, value: object) -> float:
    """Return `value` as float if it lies in the open interval (0, 1)."""
    v = _scalar(name, value)
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must be in the open interval (0, 1), got {v:g}")
    return v


def check_fraction(name: str, value: object) -> float:
    """Return `value` as float if it lies in the closed interval [0, 1]."""
    v = _scalar(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {v:g}")
    return v


def check_nonnegative(name: str, value: object) -> float:
    """Return `value` as float if it is finite and >= 0."""
    v = _scalar(name, value)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a finite number >= 0, got {v:g}")
    return v


def check_positive(name: str, value: object) -> float:
    """Return `value` as float if it is finite and > 0."""
    v = _scalar(name, value)
    if not (v > 0.0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a finite number > 0, got {v:g}")
    return v


def check_positive_int(name: str, value: object) -> int:
    """Return `value` if it is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    """Return `value` if it is True or False (an int, a string like "no" or None is refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r:.40}")
    return value


def check_int_range(name: str, value: object, lo: int, hi: int) -> int:
    """Return `value` if it is an int in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in [{lo}, {hi}], got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {value}")
    return value


def check_choice(name: str, value: object, choices: Iterable[object]) -> object:
    """Return `value` if it is one of `choices`."""
    choices = tuple(choices)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_tensor(name: str, x: object) -> Tensor:
    """Return `x` if it is a torch.Tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_finite(name: str, x: Tensor) -> Tensor:
    """Return `x` if it holds no NaN or infinity."""
    check_tensor(name, x)
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = "NaN" if bool(torch.isnan(x).any()) else "infinite values"
        raise ValueError(f"{name} contains {bad}; every entry must be finite")
    return x


def check_in_unit_interval(name: str, x: Tensor) -> Tensor:
    """Return `x` if every entry is finite and in [0, 1] (pixel intensities, probabilities)."""
    check_finite(name, x)
    if x.numel() and (bool((x < 0).any()) or bool((x > 1).any())):
        lo, hi = float(x.min()), float(x.max())
        raise ValueError(f"{name} must have all values in [0, 1], got values in [{lo:g}, {hi:g}]")
    return x


def check_rows(name: str, x: object, features: int | None = 784) -> Tensor:
    """Return `x` if it is a non-empty float tensor of shape (N, features); features=None: any (N, D).

    Looks at metadata only (no scan of the values, no device sync), so models call it on every forward.
    """
    check_tensor(name, x)
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != 2 or (features is not None and x.shape[1] != features):
        raise ValueError(f"{name} must have shape (N, {'D' if features is None else features}), "
                         f"got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: it must hold at least one sample (N >= 1)")
    return x


def check_images(name: str, x: object, features: int | None = 784) -> Tensor:
    """Return `x` if it is a non-empty float tensor of shape (N, features) with finite entries."""
    return check_finite(name, check_rows(name, x, features))


def check_model_dtype(model: torch.nn.Module, name: str, x: Tensor) -> Tensor:
    """Return `x` if its dtype is the dtype of every floating-point parameter of `model`.

    The message names the odd one out: the side that is not float32 (the library's dtype), or both.
    """
    dtypes = sorted({p.dtype for p in model.parameters() if p.is_floating_point()}, key=str)
    what = type(model).__name__
    if len(dtypes) > 1:
        raise TypeError(f"model {what} mixes parameter dtypes {', '.join(map(str, dtypes))}; "
                        f"convert it with model.float()")
    if not dtypes or dtypes[0] == x.dtype:
        return x
    if x.dtype != torch.float32 and dtypes[0] == torch.float32:
        raise TypeError(f"{name} has dtype {x.dtype} but model {what} has {dtypes[0]} parameters; "
                        f"convert {name} with {name}.float()")
    if x.dtype == torch.float32:
        raise TypeError(f"model {what} has {dtypes[0]} parameters but {name} has dtype {x.dtype}; "
                        f"convert the model with model.float()")
    raise TypeError(f"{name} has dtype {x.dtype} but model {what} has {dtypes[0]} parameters; "
                    f"use float32 for both ({name}.float(), model.float())")


def check_model_device(model: torch.nn.Module, name: str, x: Tensor) -> Tensor:
    """Return `x` if it lives on the device of the model's parameters (or the model has none)."""
    p = next(model.parameters(), None)
    if p is not None and p.device != x.device:
        raise ValueError(f"{name} is on {x.device} but the model is on {p.device}; move them to the same "
                         f"device, e.g. model.to({name}.device)")
    return x


SEED_MAX = 2**64 - 1  # the largest seed torch.Generator.manual_seed takes


def check_seed(name: str, value: object) -> int:
    """Return `value` if it is an int in [0, 2**64 - 1], the range every torch generator accepts."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in [0, 2**64 - 1], got {type(value).__name__}")
    if not 0 <= value <= SEED_MAX:
        raise ValueError(f"{name} must be an int in [0, 2**64 - 1], got {value}")
    return value


def env_flag(name: str) -> bool:
    """True when environment variable `name` is set to 1, true or yes (any case); everything else is off."""
    import os

    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def check_model_finite(name: str, model: torch.nn.Module) -> torch.nn.Module:
    """Return `model` if every parameter and buffer is finite; else a ValueError naming `name` and the tensor.

    For code that renders what a model draws (explorers, frames): NaN weights would otherwise give
    black or blank images without a word.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    for tensor_name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = "NaN" if bool(torch.isnan(t).any()) else "infinite values"
            raise ValueError(f"{name} has {bad} in {tensor_name}; every weight must be finite "
                             "(did its training diverge? retrain it with a smaller lr)")
    return model
