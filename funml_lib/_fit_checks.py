"""The checks `fit` and `evaluate` run: on their arguments once per call (values included), and on
what loss_fn and input_transform return on every batch (metadata only, so no device sync per batch).
Every message names the argument at fault.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from funml_lib._validate import check_images, check_model_dtype


def check_model_and_loss(model: object, loss_fn: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, x, target), got {type(loss_fn).__name__}")


def check_transform(input_transform: object) -> None:
    if input_transform is not None and not callable(input_transform):
        raise TypeError(f"input_transform must be None or callable as input_transform(x_batch, generator), "
                        f"got {type(input_transform).__name__}")


def _images_fast(name: str, x: object) -> Tensor:
    """check_images, with one pass over the data instead of three when all is well."""
    if (isinstance(x, Tensor) and x.is_floating_point() and x.dim() == 2 and x.shape[1] == 784
            and x.shape[0] > 0 and bool(torch.isfinite(x.sum()))):
        return x  # a finite sum means every entry is finite
    return check_images(name, x)  # raises the standard message (or passes if only the sum overflowed)


def _loss_name(loss_fn: Callable) -> str:
    return getattr(loss_fn, "__name__", type(loss_fn).__name__)


def _check_range(name: str, x: Tensor, loss_fn: Callable) -> None:
    """Values of x inside loss_fn.data_range, e.g. (0, 1) for a Bernoulli likelihood (BCE)."""
    lo, hi = loss_fn.data_range
    low, high = (float(v) for v in torch.aminmax(x))
    if low < lo or high > hi:
        hint = f"; images stored as 0-255 need {name} / 255" if high > 10 and hi == 1 else ""
        raise ValueError(f"{name} must have all values in [{lo:g}, {hi:g}] for {_loss_name(loss_fn)}, "
                         f"got values in [{low:g}, {high:g}]{hint}")


def check_data(model: nn.Module, loss_fn: Callable, x: object, target: object) -> tuple[Tensor, Tensor | None]:
    """x and target (None: x is the target) as fit and evaluate need them; returns (x, target)."""
    x = _images_fast("x", x)
    if target is not None:
        target = _images_fast("target", target)
        if target.shape != x.shape:
            raise ValueError(f"target must have the same shape as x {tuple(x.shape)}, got {tuple(target.shape)}")
        if target.device != x.device:
            raise ValueError(f"target must be on the same device as x ({x.device}), got {target.device}")
        if target.dtype != x.dtype:
            raise TypeError(f"target must have the dtype of x ({x.dtype}), got {target.dtype}")
    check_model_dtype(model, "x", x)
    if getattr(loss_fn, "data_range", None) is not None:  # e.g. vae_loss: BCE needs pixels in [0, 1]
        _check_range("x", x, loss_fn)
        if target is not None:
            _check_range("target", target, loss_fn)
    return x, target


def check_terms(out: object, first: dict[str, Tensor] | None = None, batch: int = 0,
                training: bool = False) -> dict[str, Tensor]:
    """loss_fn's result as {"loss": scalar, ...}; the same keys as on the `first` batch."""
    if isinstance(out, Tensor):
        out = {"loss": out}
    if not isinstance(out, dict) or "loss" not in out:
        keys = f" with keys {sorted(out)}" if isinstance(out, dict) else ""
        raise TypeError(f"loss_fn must return a scalar tensor or a dict with key 'loss', "
                        f"got {type(out).__name__}{keys}")
    for k, v in out.items():
        if not isinstance(v, Tensor) or v.numel() != 1:
            shape = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
            raise ValueError(f"loss_fn term {k!r} must be a scalar tensor, got {shape}")
    if first is not None and out.keys() != first.keys():
        raise ValueError(f"loss_fn returned the terms {list(out)} on batch {batch + 1} but {list(first)} "
                         f"on the first; it must return the same terms on every batch")
    if training and not out["loss"].requires_grad:
        raise ValueError("loss_fn's 'loss' has no gradient (requires_grad is False): compute it from the "
                         "model's output without .detach(), .item() or torch.no_grad()")
    return out


def transformed(input_transform: Callable, xb: Tensor, generator: torch.Generator) -> Tensor:
    """input_transform(xb, generator), checked to be a tensor like xb (shape, dtype, device)."""
    with torch.no_grad():
        out = input_transform(xb, generator)
    if not isinstance(out, Tensor):
        raise TypeError(f"input_transform must return a tensor, got {type(out).__name__}")
    if out.shape != xb.shape:
        raise ValueError(f"input_transform must return a tensor of the batch's shape {tuple(xb.shape)}, "
                         f"got {tuple(out.shape)}")
    if out.dtype != xb.dtype or out.device != xb.device:
        raise ValueError(f"input_transform must return a {xb.dtype} tensor on {xb.device} like the batch, "
                         f"got {out.dtype} on {out.device}")
    return out
