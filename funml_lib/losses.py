"""Loss terms of the lecture (squared error, L1 and KL sparsity, Gaussian KL, Bernoulli NLL, ELBO)
and the loss functions `fit` trains with.

Two kinds of functions live here:
- the *terms* (`squared_error`, `l1_sparsity`, `kl_sparsity`, `gaussian_kl`, `bernoulli_nll`)
  check their inputs fully, values included (NaN, range), because a student calls them by hand;
- the *loss functions* (`autoencoder_loss`, and what `sparse_loss(...)`, `vae_loss(...)` return) run on
  every training batch. They check types and shapes only: a value check (`x.min() < 0`, `isfinite`) is a
  device -> host sync per batch on a GPU. Values are checked once per call instead: `fit` and `evaluate`
  refuse NaN in x and target, and values outside `loss_fn.data_range` when the loss function has one
  (vae_loss: (0, 1), the range a Bernoulli likelihood needs); `fit` stops on a NaN loss.
Loss-function protocol: loss_fn(model, x, target) -> {"loss": scalar with grad, other terms: detached
0-dim tensors}; `fit` averages the terms without calling .item() per batch.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funml_lib._validate import (check_choice, check_fraction, check_images, check_in_unit_interval,
                                 check_nonnegative, check_probability_open, check_rows)

EPS = 1e-6  # rho_hat is clamped to [EPS, 1 - EPS] so log(rho_hat) and log(1 - rho_hat) stay finite

LossFn = Callable[..., "dict[str, Tensor]"]  # loss_fn(model, x, target=None) -> {"loss": ..., ...}


def _check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")


# ----------------------------------------------------------------------------------------------- terms
def squared_error(x_hat: Tensor, x: Tensor) -> Tensor:
    """Mean squared error per pixel, a 0-dim tensor.

    x_hat, x: same shape, e.g. (N, 784). Formula: (1 / (N P)) sum_i ||x_i - x_hat_i||^2.
    """
    check_images("x_hat", x_hat, features=None)
    check_images("x", x, features=None)
    _check_same_shape("x_hat", x_hat, "x", x)
    return F.mse_loss(x_hat, x)


def l1_sparsity(z: Tensor) -> Tensor:
    """L1 sparsity penalty, a 0-dim tensor: Omega(Z) = (1/N) sum_i ||z_i||_1 = (1/N) sum_i sum_j |z_ij|.

    z: (N, hidden) activations. The lecture sums over samples; the batch mean keeps lam independent of N.
    """
    check_images("z", z, features=None)
    return z.abs().sum(1).mean()


def _kl_bernoulli(rho: float, rho_hat: Tensor) -> Tensor:
    # rho as a tensor of rho_hat's dtype makes KL(rho || rho) exactly 0; full_like needs no host->device copy
    rho_t = torch.full_like(rho_hat, rho)
    rho_hat = rho_hat.clamp(EPS, 1.0 - EPS)
    return (rho_t * (torch.log(rho_t) - torch.log(rho_hat))
            + (1.0 - rho_t) * (torch.log1p(-rho_t) - torch.log1p(-rho_hat)))


def kl_sparsity(rho: float, rho_hat: Tensor | float) -> Tensor:
    """Bernoulli KL divergence KL(rho || rho_hat) elementwise, same shape as rho_hat (nats).

    rho: target mean activation in (0, 1); rho_hat: observed mean activations in [0, 1], e.g. (hidden,).
    KL(rho || rho_hat) = rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)).
    rho_hat is clamped to [1e-6, 1 - 1e-6], so the value stays finite (about 0.49 for rho = 0.05)
    at rho_hat = 0 or 1; the gradient is zero in the clamped end regions.
    """
    rho = check_probability_open("rho", rho)
    if not isinstance(rho_hat, Tensor):
        rho_hat = torch.tensor(check_fraction("rho_hat", rho_hat), dtype=torch.get_default_dtype())
    if not rho_hat.is_floating_point():
        raise TypeError(f"rho_hat must be a floating-point tensor, got dtype {rho_hat.dtype}")
    check_in_unit_interval("rho_hat", rho_hat)
    return _kl_bernoulli(rho, rho_hat)


def _gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


def gaussian_kl(mu: Tensor, logvar: Tensor, check_values: bool = True) -> Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per sample, shape (N,), nats.

    mu, logvar: (N, latent_dim). Closed form: 0.5 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j).
    check_values=False skips the scan for NaN and infinity (a device sync), for loops over batches
    that checked their data once; shapes are always checked.
    """
    if not isinstance(check_values, bool):
        raise TypeError(f"check_values must be a bool, got {type(check_values).__name__}")
    check = check_images if check_values else check_rows  # shapes always, values when asked
    check("mu", mu, features=None)
    check("logvar", logvar, features=None)
    _check_same_shape("mu", mu, "logvar", logvar)
    return _gaussian_kl(mu, logvar)


def bernoulli_nll(x_hat: Tensor, x: Tensor, logits: bool = False) -> Tensor:
    """Bernoulli negative log-likelihood -log p(x | x_hat) summed over pixels, shape (N,), nats.

    x_hat: (N, P) pixel means in [0, 1], or logits (any real) when logits=True; x: (N, P) in [0, 1].
    Formula (binary cross-entropy): -sum_p [x_p log x_hat_p + (1 - x_p) log(1 - x_hat_p)].
    The logits path uses the fused, numerically stable BCE-with-logits.
    """
    if not isinstance(logits, bool):
        raise TypeError(f"logits must be a bool, got {type(logits).__name__}")
    check_images("x_hat", x_hat, features=None)
    check_images("x", x, features=None)
    _check_same_shape("x_hat", x_hat, "x", x)
    check_in_unit_interval("x", x)
    if logits:
        return F.binary_cross_entropy_with_logits(x_hat, x, reduction="none").sum(1)
    check_in_unit_interval("x_hat", x_hat)
    return F.binary_cross_entropy(x_hat, x, reduction="none").sum(1)


# ------------------------------------------------------------------------------------- loss functions
def _target_like(x_hat: Tensor, x: Tensor, target: Tensor | None) -> Tensor:
    target = x if target is None else target
    if target.shape != x_hat.shape:
        raise ValueError(f"target must have the shape of the reconstruction {tuple(x_hat.shape)}, "
                         f"got {tuple(target.shape)}")
    return target


def autoencoder_loss(model: nn.Module, x: Tensor, target: Tensor | None = None) -> dict[str, Tensor]:
    """Plain (or denoising) autoencoder loss {"loss": squared_error(model(x), target)}.

    x: (N, 784) input (the corrupted x_tilde for a denoising AE); target: (N, 784), None means x.
    L = ||X - X_hat||^2, averaged per pixel.
    """
    x_hat = model(x)
    if isinstance(x_hat, tuple):
        raise TypeError(f"autoencoder_loss needs a model whose forward returns x_hat, got a tuple from "
                        f"{type(model).__name__}; for a VAE use vae_loss()")
    return {"loss": F.mse_loss(x_hat, _target_like(x_hat, x, target))}


def sparse_loss(penalty: str, lam: float, rho: float = 0.05) -> LossFn:
    """Build the sparse autoencoder loss L = ||X - X_hat||^2 + lam * Omega(Z).

    penalty "l1": Omega = l1_sparsity(z); "kl": Omega = sum_j KL(rho || rho_hat_j), rho_hat = z.mean(0)
    over the batch. The model needs encode (z in (0, 1) for "kl") and decode.
    Returns loss_fn(model, x, target=None) -> {"loss", "reconstruction" (per-pixel MSE), "sparsity" (Omega)}.
    """
    check_choice("penalty", penalty, ("l1", "kl"))
    lam = check_nonnegative("lam", lam)
    rho = check_probability_open("rho", rho)

    def loss_fn(model: nn.Module, x: Tensor, target: Tensor | None = None) -> dict[str, Tensor]:
        z = model.encode(x)
        x_hat = model.decode(z)
        reconstruction = F.mse_loss(x_hat, _target_like(x_hat, x, target))
        if penalty == "l1":
            sparsity = z.abs().sum(1).mean()
        else:
            sparsity = _kl_bernoulli(rho, z.mean(0)).sum()
        return {"loss": reconstruction + lam * sparsity,
                "reconstruction": reconstruction.detach(), "sparsity": sparsity.detach()}

    loss_fn.__name__ = loss_fn.__qualname__ = f"sparse_loss({penalty!r}, lam={lam:g}, rho={rho:g})"
    return loss_fn


def vae_loss(beta: float = 1.0) -> LossFn:
    """Build the (beta-)VAE loss: negative ELBO averaged over the batch, in nats per digit.

    loss = (1/N) sum_i [BCE(x_i, logits_i) + beta KL(q(z|x_i) || N(0, I))], one z ~ q(z|x_i) per digit.
    The model needs encode -> (mu, logvar), reparameterize and decode_logits (VAE, PyTorchExamplesVAE).
    Returns loss_fn(model, x, target=None) -> {"loss", "reconstruction", "kl"}, the last two per-digit means.
    Hot path: BCE-with-logits is fused and target's [0, 1] range is not checked here (that would be a
    device sync per batch): loss_fn.data_range = (0, 1) tells fit and evaluate to check it once per call.
    """
    beta = check_nonnegative("beta", beta)

    def loss_fn(model: nn.Module, x: Tensor, target: Tensor | None = None) -> dict[str, Tensor]:
        if not hasattr(model, "decode_logits"):
            raise TypeError(f"vae_loss needs a model with encode -> (mu, logvar), reparameterize and "
                            f"decode_logits, got {type(model).__name__}")
        mu, logvar = model.encode(x)
        logits = model.decode_logits(model.reparameterize(mu, logvar))
        n = x.shape[0]
        reconstruction = F.binary_cross_entropy_with_logits(
            logits, _target_like(logits, x, target), reduction="sum") / n
        kl = _gaussian_kl(mu, logvar).sum() / n
        return {"loss": reconstruction + beta * kl, "reconstruction": reconstruction.detach(), "kl": kl.detach()}

    loss_fn.__name__ = loss_fn.__qualname__ = f"vae_loss(beta={beta:g})"
    loss_fn.data_range = (0.0, 1.0)  # fit and evaluate check x and target once per call
    return loss_fn
