"""Training on device-resident tensors: seeding, device choice, `fit`, its epoch loop `train_epoch`
and `evaluate` (checkpoints: funml_lib.checkpoints).

The whole data set already lives on the device as one (N, 784) tensor, so an epoch is a random
permutation plus slicing: no DataLoader, no per-sample Python, no host -> device copies.
Loss terms are summed on the device and read back once per epoch (one sync), not per batch.
"""
from __future__ import annotations

import math
import random
import time
from typing import Callable

import torch
from torch import Tensor, nn

from funml_lib._fit_checks import check_data, check_model_and_loss, check_terms, check_transform, transformed
from funml_lib._validate import (check_choice, check_model_device, check_nonnegative, check_positive,
                                 check_positive_int, check_seed, env_flag)
from funml_lib.metrics import evaluating

LossFn = Callable[..., "dict[str, Tensor] | Tensor"]  # loss_fn(model, x, target) -> {"loss": ..., ...}
Transform = Callable[[Tensor, torch.Generator], Tensor]  # input_transform(x_batch, generator) -> like x_batch
DEVICES = ("cpu", "cuda", "mps")


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy (when installed) and torch (CPU and every GPU) with `seed`."""
    seed = check_seed("seed", seed)
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


def _adam(params: list[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with the fused kernel (one kernel for all parameters) where the device has one, else foreach."""
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError, TypeError):  # older torch, or a device without fused Adam
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)


def _cosine(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """lr_t = lr * (1 + cos(pi t / T)) / 2 for the T = total_steps optimizer steps."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: 0.5 * (1.0 + math.cos(math.pi * t / total_steps)))


def _show_progress(progress: bool | None) -> bool:
    if progress is None:
        # CI logs fill up with progress bars, and in the built book (FUNML_STATIC) a bar would be a
        # frozen widget; everyone else likes to see them
        return not (env_flag("CI") or env_flag("FUNML_STATIC"))
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be None, True or False, got {type(progress).__name__}")
    return progress


def _rng_scope(device: torch.device):
    # fit's randomness (shuffling, VAE noise, dropout) comes from `seed`, without changing the caller's
    # global random state: a chapter's later sampling does not depend on how long it trained
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type="cuda")


def train_epoch(model: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer, x: Tensor,
                target: Tensor | None = None, *, batch_size: int = 128,
                generator: torch.Generator | None = None, input_transform: Transform | None = None,
                scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> dict[str, Tensor]:
    """One epoch of minibatch training: every row of x once, in a fresh random order.

    Each batch: loss of the model on the (transformed) input against the clean target, backward, one
    optimizer step. Returns each loss term's mean over the N rows as a 0-dim tensor on x's device:
    reading them (.tolist(), .item()) is the epoch's only device -> host sync.
    """
    n = x.shape[0]
    order = torch.randperm(n, generator=generator, device=x.device)
    batches: list[dict[str, Tensor]] = []
    for idx in order.split(batch_size):
        xb = x.index_select(0, idx)                                   # a batch of clean digits
        tb = xb if target is None else target.index_select(0, idx)    # what the model should output
        if input_transform is not None:
            xb = transformed(input_transform, xb, generator)          # e.g. fresh noise on every batch
        terms = check_terms(loss_fn(model, xb, tb), batches[0] if batches else None, len(batches),
                            training=True)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        batches.append({k: v.detach().reshape(()).to(x.device) for k, v in terms.items()})
    # batch b holds len(idx_b) rows: the last batch may be smaller
    weights = torch.full((len(batches),), batch_size / n, device=x.device)
    weights[-1] = (n - batch_size * (len(batches) - 1)) / n
    return {k: (torch.stack([b[k] for b in batches]) * weights).sum() for k in batches[0]}


def fit(model: nn.Module, loss_fn: LossFn, x: Tensor, target: Tensor | None = None, *,
        epochs: int = 10, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
        weight_decay: float = 0.0, lr_schedule: str | None = None,
        input_transform: Transform | None = None, progress: bool | None = None) -> History:
    """Train `model` with Adam on device tensors; returns the per-epoch mean of every loss term.

    x: (N, 784) input on the training device (the model is moved there); target: (N, 784), None means x
    (a denoising AE passes x_tilde as x and the clean digits as target). loss_fn(model, xb, tb) returns a
    scalar tensor or {"loss": scalar to minimise, other terms to log}. Each epoch visits the N rows in a
    fresh random order (torch.randperm seeded by `seed`) in batches of `batch_size` (the last one smaller).
    input_transform(xb, generator) -> tensor like xb: applied on the device to every batch's input (the
    target stays clean), e.g. fresh noise per batch; draw from `generator` (seeded by `seed`).
    lr_schedule="cosine": lr_t = lr * (1 + cos(pi t / T)) / 2 over the T optimizer steps.
    The same seed, model initialisation and data give bit-identical weights on the CPU.
    A loss_fn with `data_range = (lo, hi)` (vae_loss: (0, 1)) gets x and target checked against it.
    """
    check_model_and_loss(model, loss_fn)
    x, target = check_data(model, loss_fn, x, target)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    lr = check_positive("lr", lr)
    weight_decay = check_nonnegative("weight_decay", weight_decay)
    seed = check_seed("seed", seed)
    check_choice("lr_schedule", lr_schedule, (None, "cosine"))
    check_transform(input_transform)
    show = _show_progress(progress)

    from tqdm.auto import tqdm  # imported late: tqdm.auto probes for Jupyter on import

    device = x.device
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"model {type(model).__name__} has no trainable parameters")
    optimizer = _adam(params, lr, weight_decay)
    steps = epochs * math.ceil(x.shape[0] / batch_size)
    scheduler = _cosine(optimizer, steps) if lr_schedule == "cosine" else None
    history = History()
    bar = tqdm(range(1, epochs + 1), desc=f"{type(model).__name__} on {device.type}", unit="epoch",
               disable=not show, leave=True)
    with _rng_scope(device), torch.enable_grad(), bar:  # the bar closes on an error too
        torch.manual_seed(seed)  # the model's own randomness: VAE noise, dropout
        generator = torch.Generator(device=device).manual_seed(seed)  # batch order, input_transform
        for epoch in bar:
            t0 = time.perf_counter()
            means = train_epoch(model, loss_fn, optimizer, x, target, batch_size=batch_size,
                                generator=generator, input_transform=input_transform, scheduler=scheduler)
            values = torch.stack(list(means.values())).tolist()  # one device -> host sync per epoch
            history.epoch_seconds.append(time.perf_counter() - t0)
            if history and means.keys() != history.keys():
                raise ValueError(f"loss_fn returned the terms {list(means)} in epoch {epoch} but "
                                 f"{list(history)} before; it must return the same terms on every batch")
            for k, v in zip(means, values):
                history.setdefault(k, []).append(v)
            loss = history["loss"][-1]
            if not math.isfinite(loss):
                raise ValueError(f"loss became {'NaN' if math.isnan(loss) else 'infinite'} at epoch {epoch}; "
                                 f"lower lr (now {lr:g}, try {lr / 10:g}) or check the data and the loss")
            bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.items()}, refresh=False)
    return history


def evaluate(model: nn.Module, loss_fn: LossFn, x: Tensor, target: Tensor | None = None,
             batch_size: int = 1024, *, seed: int = 0) -> dict[str, float]:
    """Mean of every loss term over all N rows, in eval mode without gradients: {"loss": float, ...}.

    x, target: (N, 784) as in fit. Batches only bound the memory; the result is the per-sample mean
    (batch terms weighted by batch size). `seed` fixes any sampling inside loss_fn (VAE noise).
    """
    check_model_and_loss(model, loss_fn)
    x, target = check_data(model, loss_fn, x, target)
    check_model_device(model, "x", x)
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_seed("seed", seed)
    n, first, sums = x.shape[0], None, {}
    with evaluating(model), _rng_scope(x.device):
        torch.manual_seed(seed)
        for b, s in enumerate(range(0, n, batch_size)):
            xb = x[s:s + batch_size]
            out = check_terms(loss_fn(model, xb, xb if target is None else target[s:s + batch_size]), first, b)
            first = first or out
            for k, v in out.items():
                sums[k] = sums[k] + v.reshape(()) * xb.shape[0] if k in sums else v.reshape(()) * xb.shape[0]
    values = (torch.stack(list(sums.values())) / n).tolist()
    return dict(zip(sums, values))
