"""Training on device-resident tensors: seeding, device choice, `fit`, `evaluate`, checkpoints.

The whole data set already lives on the device as one (N, 784) tensor, so an epoch is a random
permutation plus slicing: no DataLoader, no per-sample Python, no host -> device copies.
Loss terms are summed on the device and read back once per epoch (one sync), not per batch.
"""
from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from funml_lib._validate import (check_choice, check_images, check_nonnegative, check_positive,
                               check_positive_int, check_tensor)

LossFn = Callable[..., "dict[str, Tensor] | Tensor"]  # loss_fn(model, x, target) -> {"loss": ..., ...}
DEVICES = ("cpu", "cuda", "mps")
_CHECKPOINT_FORMAT = 1


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy (when installed) and torch (CPU and every GPU) with `seed`."""
    seed = _check_int("seed", seed)
    random.seed(seed)
    try:
        import numpy as np
        np.random.seed(seed % 2**32)  # numpy accepts only [0, 2**32)
    except ImportError:  # numpy is optional for the library itself
        pass
    torch.manual_seed(seed)  # also seeds every CUDA device


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to train on: `prefer` when given, else cuda, then mps (Apple GPU), then cpu.

    prefer: None, "cpu", "cuda", "mps" or a torch.device. Asking for a GPU that is not there raises
    ValueError rather than silently training on the CPU.
    """
    if prefer is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if not isinstance(prefer, (str, torch.device)):
        raise TypeError(f"prefer must be None, a string or a torch.device, got {type(prefer).__name__}")
    try:
        device = torch.device(prefer)
    except RuntimeError:  # not a device string at all
        device = None
    if device is None or device.type not in DEVICES:
        raise ValueError(f"prefer must be one of 'cpu', 'cuda', 'mps' (or an indexed one like 'cuda:1'), "
                         f"got {prefer!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"prefer={str(device)!r} but no CUDA GPU is available here; use prefer=None or 'cpu'")
    if device.type == "mps" and not _mps_available():
        raise ValueError("prefer='mps' but no Apple-silicon GPU (MPS) is available here; "
                         "use prefer=None or 'cpu'")
    return device


class History(dict):
    """Per-epoch means of every loss term: history["loss"] -> [epoch 1, epoch 2, ...].

    A plain dict (key -> list of floats) plus `epoch_seconds`, the wall time of each epoch.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch_seconds: list[float] = []

    @property
    def epochs(self) -> int:
        """Number of epochs recorded."""
        return len(self.get("loss", []))

    def __repr__(self) -> str:
        terms = ", ".join(f"{k}: {v[0]:.4g} -> {v[-1]:.4g}" if v else f"{k}: -" for k, v in self.items())
        return f"History({self.epochs} epochs; {terms})"


def _as_terms(out: object) -> dict[str, Tensor]:
    """Normalise a loss_fn result to {"loss": scalar, ...}; checked on every batch (metadata only)."""
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
    return out


def _check_images_fast(name: str, x: object) -> Tensor:
    """check_images, with one pass over the data instead of three when all is well."""
    if (isinstance(x, Tensor) and x.is_floating_point() and x.dim() == 2 and x.shape[1] == 784
            and x.shape[0] > 0 and bool(torch.isfinite(x.sum()))):
        return x  # a finite sum means every entry is finite
    return check_images(name, x)  # raises the standard message (or passes if only the sum overflowed)


def _check_model_and_loss(model: object, loss_fn: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, x, target), got {type(loss_fn).__name__}")


def _check_data(x: object, target: object) -> tuple[Tensor, Tensor]:
    x = _check_images_fast("x", x)
    if target is None:
        return x, x
    check_tensor("target", target)
    if target.shape != x.shape:
        raise ValueError(f"target must have the same shape as x {tuple(x.shape)}, got {tuple(target.shape)}")
    if target.device != x.device:
        raise ValueError(f"target must be on the same device as x ({x.device}), got {target.device}")
    return x, target


def _adam(params: list[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with the fused kernel (one kernel for all parameters) where the device has one, else foreach."""
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError, TypeError):  # older torch, or a device without fused Adam
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)


def _show_progress(progress: bool | None) -> bool:
    if progress is None:
        # CI logs fill up with progress bars, and in the built book (FUNML_STATIC) a bar would be a
        # frozen widget; everyone else likes to see them
        quiet = [os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no")
                 for v in ("CI", "FUNML_STATIC")]
        return not any(quiet)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be None, True or False, got {type(progress).__name__}")
    return progress


def _rng_scope(device: torch.device):
    # fit's randomness (shuffling, VAE noise, dropout) comes from `seed`, without changing the caller's
    # global random state: a chapter's later sampling does not depend on how long it trained
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type="cuda")


def fit(model: nn.Module, loss_fn: LossFn, x: Tensor, target: Tensor | None = None, *,
        epochs: int = 10, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
        weight_decay: float = 0.0, lr_schedule: str | None = None,
        progress: bool | None = None) -> History:
    """Train `model` with Adam on device tensors; returns the per-epoch mean of every loss term.

    x: (N, 784) input on the training device (the model is moved there); target: (N, 784), None means x
    (a denoising AE passes x_tilde as x and the clean digits as target). loss_fn(model, xb, tb) returns a
    scalar tensor or {"loss": scalar to minimise, other terms to log}. Each epoch visits the N rows in a
    fresh random order (torch.randperm seeded by `seed`) in batches of `batch_size` (the last one smaller).
    lr_schedule="cosine": lr_t = lr * (1 + cos(pi t / T)) / 2 over the T optimizer steps.
    The same seed, model initialisation and data give bit-identical weights on the CPU.
    """
    _check_model_and_loss(model, loss_fn)
    x, target = _check_data(x, target)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    lr = check_positive("lr", lr)
    weight_decay = check_nonnegative("weight_decay", weight_decay)
    seed = _check_int("seed", seed)
    check_choice("lr_schedule", lr_schedule, (None, "cosine"))
    show = _show_progress(progress)

    from tqdm.auto import tqdm  # imported late: tqdm.auto probes for Jupyter on import

    device, n = x.device, x.shape[0]
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"model {type(model).__name__} has no trainable parameters")
    optimizer = _adam(params, lr, weight_decay)
    starts = range(0, n, batch_size)
    total_steps, step = epochs * len(starts), 0
    # weight of each batch in the epoch mean: the last batch may be smaller
    weights = torch.tensor([min(batch_size, n - s) / n for s in starts], device=device)
    history = History()
    bar = tqdm(range(1, epochs + 1), desc=f"{type(model).__name__} on {device.type}", unit="epoch",
               disable=not show, leave=True)
    with _rng_scope(device):
        torch.manual_seed(seed)
        generator = torch.Generator(device=device).manual_seed(seed)
        for epoch in bar:
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=generator, device=device)
            terms: dict[str, list[Tensor]] = {}
            for s in starts:
                idx = perm[s:s + batch_size]
                xb = x.index_select(0, idx)
                tb = xb if target is x else target.index_select(0, idx)
                out = _as_terms(loss_fn(model, xb, tb))
                optimizer.zero_grad(set_to_none=True)
                out["loss"].backward()
                if lr_schedule == "cosine":
                    optimizer.param_groups[0]["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
                optimizer.step()
                step += 1
                for k, v in out.items():
                    terms.setdefault(k, []).append(v.detach().reshape(()).to(device))  # no-op on device
            # one device -> host sync per epoch for all terms
            means = [(torch.stack(v) * weights).sum() for v in terms.values()]
            values = torch.stack(means).tolist()
            history.epoch_seconds.append(time.perf_counter() - t0)
            for k, v in zip(terms, values):
                history.setdefault(k, []).append(v)
            if not math.isfinite(history["loss"][-1]):
                bar.close()
                bad = "NaN" if math.isnan(history["loss"][-1]) else "infinite"
                raise ValueError(f"loss became {bad} at epoch {epoch}; lower lr (now {lr:g}, try {lr / 10:g}) "
                                 f"or check the data and the loss")
            bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.items()}, refresh=False)
    bar.close()
    return history


def evaluate(model: nn.Module, loss_fn: LossFn, x: Tensor, target: Tensor | None = None,
             batch_size: int = 1024, *, seed: int = 0) -> dict[str, float]:
    """Mean of every loss term over all N rows, in eval mode without gradients: {"loss": float, ...}.

    x, target: (N, 784) as in fit. Batches only bound the memory; the result is the per-sample mean
    (batch terms weighted by batch size). `seed` fixes any sampling inside loss_fn (VAE noise).
    """
    _check_model_and_loss(model, loss_fn)
    x, target = _check_data(x, target)
    batch_size = check_positive_int("batch_size", batch_size)
    seed = _check_int("seed", seed)
    n, was_training = x.shape[0], model.training
    sums: dict[str, Tensor] = {}
    model.eval()
    try:
        with torch.no_grad(), _rng_scope(x.device):
            torch.manual_seed(seed)
            for s in range(0, n, batch_size):
                out = _as_terms(loss_fn(model, x[s:s + batch_size], target[s:s + batch_size]))
                m = min(batch_size, n - s)
                for k, v in out.items():
                    sums[k] = sums[k] + v.reshape(()) * m if k in sums else v.reshape(()) * m
    finally:
        model.train(was_training)
    values = (torch.stack(list(sums.values())) / n).tolist()
    return dict(zip(sums, values))


def _describe(name: str, config: dict) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in config.items())})"


def save_checkpoint(model: nn.Module, path: str | Path, **extra) -> Path:
    """Save the model's class name, `model.config` and weights (as CPU tensors) to `path`; returns the path.

    extra: plain Python values or tensors stored alongside (e.g. history=..., epochs=...); read them back
    with torch.load(path)["extra"]. Parent folders are created.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {k: dict(v) if isinstance(v, History) else v for k, v in extra.items()}
    torch.save({"format": _CHECKPOINT_FORMAT, "class": type(model).__name__,
                "config": dict(getattr(model, "config", {})),
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "extra": extra}, path)
    return path


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights saved by save_checkpoint into `model` (in place, on its device) and return it.

    Refuses (ValueError) a checkpoint of another class or config, naming both.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} does not exist; save one with save_checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types for a truncated or foreign file
        raise ValueError(f"{str(path)!r} is not a readable checkpoint ({type(e).__name__}): the file is "
                         f"truncated or was not written by save_checkpoint; re-create it with save_checkpoint"
                         ) from None
    if not isinstance(ckpt, dict) or not {"class", "config", "state_dict"} <= set(ckpt):
        raise ValueError(f"{str(path)!r} is not a funml_lib checkpoint (expected keys 'class', 'config', "
                         f"'state_dict'); re-create it with save_checkpoint")
    config = dict(getattr(model, "config", {}))
    if ckpt["class"] != type(model).__name__ or ckpt["config"] != config:
        raise ValueError(f"checkpoint holds a {_describe(ckpt['class'], ckpt['config'])} "
                         f"but the model is a {_describe(type(model).__name__, config)}")
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:  # same class and config but other weights, e.g. a model without config
        raise ValueError(f"the weights in {str(path)!r} do not fit {type(model).__name__}: {e}") from None
    return model
