"""Numbers the chapters report about a trained model: reconstruction error, sparsity of the code,
negative ELBO and an importance-sampled estimate of -log p(x) for VAEs.

Every function runs without gradients, in batches, with the model in eval mode (its previous
train/eval mode is restored afterwards), and synchronises with the device once, at the end.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funml_lib._validate import (check_finite, check_images, check_in_unit_interval, check_model_device,
                                 check_model_dtype, check_model_finite, check_nonnegative, check_positive_int,
                                 check_probability_open, check_seed, check_tensor)
from funml_lib.losses import gaussian_kl

LOG_2PI = math.log(2.0 * math.pi)
# importance_sampled_nll decodes at most this many (sample, digit, pixel) entries at once (16 MB of
# float32 per tensor), whatever k is: k samples per digit are taken in chunks of this size
IS_CHUNK_ELEMENTS = 2**22


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """`with evaluating(model):` eval mode and no gradients inside; the previous mode is restored after.

    Eval mode switches off dropout and uses batch-norm running statistics; no_grad skips building the
    autograd graph. Every metric here, and `evaluate`, runs its model this way.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)



def _check_inputs(model: nn.Module, x: object, batch_size: object) -> Tensor:
    check_images("x", x)
    check_positive_int("batch_size", batch_size)
    if isinstance(model, nn.Module):  # anything else is refused, by name, by evaluating(model)
        check_model_device(model, "x", x)
        check_model_dtype(model, "x", x)
        check_model_finite("model", model)  # NaN weights would give a NaN measurement without a word
    return x


def _encode_gaussian(model: nn.Module, x: Tensor, caller: str) -> tuple[Tensor, Tensor]:
    out = model.encode(x) if hasattr(model, "encode") else None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"{caller} needs a VAE-like model whose encode(x) returns (mu, logvar), "
                        f"got {type(model).__name__}")
    return out


def _log_px_given_z(model: nn.Module, z: Tensor, x: Tensor) -> Tensor:
    """log p(x|z) of a Bernoulli decoder, summed over pixels: z (..., d), x broadcastable -> (...)."""
    lead = z.shape[:-1]
    z2 = z.reshape(-1, z.shape[-1])
    if hasattr(model, "decode_logits"):
        logits = model.decode_logits(z2).reshape(*lead, -1)
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
    x_hat = model.decode(z2).reshape(*lead, -1)
    return -F.binary_cross_entropy(x_hat, x.expand_as(x_hat), reduction="none").sum(-1)


def _reconstruct(model: nn.Module, x: Tensor) -> Tensor:
    if hasattr(model, "reparameterize"):
        mu, _ = _encode_gaussian(model, x, "reconstruction_mse")
        return model.decode(mu)  # the posterior mean, so the metric is deterministic
    x_hat = model(x)
    return x_hat[0] if isinstance(x_hat, tuple) else x_hat


def _total(parts: list[Tensor]) -> float:
    # float64 on the CPU: mps has no float64, and the sum of many float32 partial sums loses digits
    return float(torch.stack(parts).cpu().double().sum())


def reconstruction_mse(model: nn.Module, x: Tensor, target: Tensor | None = None, batch_size: int = 1024) -> float:
    """Mean squared reconstruction error per pixel over the whole set.

    x: (N, 784) input (x_tilde for a denoising AE); target: (N, 784), None means x.
    MSE = (1 / (N 784)) sum_i ||target_i - x_hat_i||^2. For a VAE x_hat = decode(mu), the posterior mean.
    """
    _check_inputs(model, x, batch_size)
    target = x if target is None else check_images("target", target)
    if target.shape != x.shape:
        raise ValueError(f"target must have the shape of x {tuple(x.shape)}, got {tuple(target.shape)}")
    parts = []
    with evaluating(model):
        for i in range(0, x.shape[0], batch_size):
            x_hat = _reconstruct(model, x[i:i + batch_size])
            parts.append(F.mse_loss(x_hat, target[i:i + batch_size], reduction="sum"))
    return _total(parts) / target.numel()


def activations(model: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Codes z = model.encode(x) for the whole set, (N, hidden), on x's device, no grad.

    For a VAE (encode returns (mu, logvar)) this is mu.
    """
    _check_inputs(model, x, batch_size)
    parts = []
    with evaluating(model):
        for i in range(0, x.shape[0], batch_size):
            z = model.encode(x[i:i + batch_size])
            parts.append(z[0] if isinstance(z, tuple) else z)
    return torch.cat(parts)


def sparsity_stats(z: Tensor, rho: float | None = None, threshold: float = 0.05) -> dict:
    """Summary of how sparse the codes z (N, hidden) are.

    Returns {"mean_activation": rho_hat_j = (1/N) sum_i z_ij as a CPU tensor (hidden,),
    "mean_rho_hat": mean_j rho_hat_j, "frac_below": fraction of z_ij < threshold,
    "frac_zero": fraction of z_ij == 0, "rho": rho (the target, passed through)}.
    """
    check_tensor("z", z)
    if z.dim() != 2 or z.shape[0] == 0:
        raise ValueError(f"z must have shape (N, hidden) with N >= 1, got {tuple(z.shape)}")
    check_finite("z", z)
    if rho is not None:
        rho = check_probability_open("rho", rho)
    threshold = check_nonnegative("threshold", threshold)
    z = z.detach().float()
    rho_hat = z.mean(0)
    return {"mean_activation": rho_hat.cpu(), "mean_rho_hat": float(rho_hat.mean()),
            "frac_below": float((z < threshold).float().mean()), "frac_zero": float((z == 0).float().mean()),
            "rho": rho}


def negative_elbo(model: nn.Module, x: Tensor, batch_size: int = 1024, seed: int = 0) -> float:
    """Negative ELBO in nats per digit, averaged over the digits, one z ~ q(z|x) per digit.

    x: (N, 784) in [0, 1]; model: encode -> (mu, logvar) and decode_logits (or decode), e.g. VAE or
    PyTorchExamplesVAE. -ELBO_i = -log p(x_i|z_i) + KL(q(z|x_i) || N(0, I)), z_i = mu_i + sigma_i eps_i,
    eps from a torch.Generator on x.device seeded with `seed` (same seed and device -> same number).
    """
    _check_inputs(model, x, batch_size)
    check_in_unit_interval("x", x)
    g = torch.Generator(device=x.device).manual_seed(check_seed("seed", seed))
    parts = []
    with evaluating(model):
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size]
            mu, logvar = _encode_gaussian(model, xb, "negative_elbo")
            eps = torch.randn(mu.shape, generator=g, device=mu.device, dtype=mu.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps
            kl = gaussian_kl(mu, logvar, check_values=False)  # no NaN scan: no device sync per batch
            parts.append((kl - _log_px_given_z(model, z, xb)).sum())
    return _total(parts) / x.shape[0]


def _standard_normal(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


def _log_weights(model: nn.Module, xb: Tensor, mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
    """log w = log p(x|z) + log p(z) - log q(z|x) for z = mu + sigma eps: eps (s, B, d) -> (s, B)."""
    z = mu + torch.exp(0.5 * logvar) * eps
    log_pz = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
    log_qz = -0.5 * (eps.pow(2) + LOG_2PI + logvar).sum(-1)  # (z - mu) / sigma = eps
    return _log_px_given_z(model, z, xb) + log_pz - log_qz


def importance_sampled_nll(model: nn.Module, x: Tensor, k: int = 100, batch_size: int = 256,
                           seed: int = 0) -> float:
    """Importance-sampled estimate of -log p(x) in nats per digit, averaged over the digits.

    x: (N, 784) in [0, 1]; k samples z_1..z_k ~ q(z|x) per digit (seeded generator);
    -log p(x) ~= -log (1/k) sum_k p(x|z_k) p(z_k) / q(z_k|x), computed with logsumexp.
    By Jensen's inequality the estimate is <= negative_elbo in expectation, with equality in expectation
    at k = 1, and it decreases towards -log p(x) as k grows (Burda et al., 2016).
    Memory is bounded for any k: the k samples are drawn and decoded in chunks of about
    IS_CHUNK_ELEMENTS / (batch_size * 784) at a time, their logsumexp accumulated with logaddexp.
    """
    _check_inputs(model, x, batch_size)
    check_in_unit_interval("x", x)
    check_positive_int("k", k)
    g = torch.Generator(device=x.device).manual_seed(check_seed("seed", seed))
    parts = []
    with evaluating(model):
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size]
            mu, logvar = _encode_gaussian(model, xb, "importance_sampled_nll")
            chunk = max(1, IS_CHUNK_ELEMENTS // xb.numel())  # samples per chunk
            log_sum = None  # log sum_j w_j over the samples so far, (B,)
            for start in range(0, k, chunk):
                eps = _standard_normal((min(chunk, k - start), *mu.shape), g, mu)
                lse = torch.logsumexp(_log_weights(model, xb, mu, logvar, eps), 0)
                log_sum = lse if log_sum is None else torch.logaddexp(log_sum, lse)
            parts.append(-(log_sum - math.log(k)).sum())
    return _total(parts) / x.shape[0]
