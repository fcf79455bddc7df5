"""Small, exactly checkable models behind the VAE chapter's derivations.

Three groups, each named after the math it checks:
- gradient estimators of d/dmu and d/dsigma of E_{z ~ N(mu, sigma^2)}[f(z)]: the reparameterised
  (pathwise) estimator and the score-function (REINFORCE) estimator, one estimate per sample;
- a linear-Gaussian latent model, p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I), whose evidence log p(x)
  and posterior p(z|x) are known in closed form, so an ELBO can be compared with the truth;
- a Monte Carlo estimate of KL(N(mu, diag sigma^2) || N(0, I)) to set beside the closed form.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from funml_lib._validate import check_finite, check_positive, check_positive_int, check_seed

__all__ = [
    "GradientSamples", "reparameterized_gradient", "score_function_gradient", "square",
    "square_gradient", "square_gradient_variance", "spread_of_mean",
    "linear_gaussian_log_likelihood", "linear_gaussian_posterior", "linear_gaussian_elbo",
    "gaussian_kl_full", "check_covariance", "MonteCarloEstimate", "gaussian_kl_monte_carlo",
]


# ---------------------------------------------------------------------------------------------
# 1. Gradient estimators for E_{z ~ N(mu, sigma^2)}[f(z)]
# ---------------------------------------------------------------------------------------------
class GradientSamples(NamedTuple):
    """Per-sample gradient estimates, each of shape (n_samples,); their means estimate the gradient."""
    d_mu: Tensor
    d_sigma: Tensor


def _check_mu_sigma(mu: float, sigma: float) -> tuple[float, float]:
    if isinstance(mu, bool) or not isinstance(mu, (int, float)):
        raise TypeError(f"mu must be a real number, got {type(mu).__name__}")
    if not math.isfinite(mu):
        raise ValueError(f"mu must be a finite number, got {mu}")
    return float(mu), check_positive("sigma", sigma)


def _check_f(f: object) -> Callable[[Tensor], Tensor]:
    if not callable(f):
        raise TypeError(f"f must be a function of a tensor z of shape (n,), got {type(f).__name__}")
    return f


def _values(f: Callable[[Tensor], Tensor], z: Tensor, differentiable: bool) -> Tensor:
    """f(z), checked: a finite floating tensor of z's shape (n,), one value per sample.

    A scalar (e.g. f = lambda t: (t * t).sum()) would be broadcast against every sample's score and give
    a wrong gradient without an error, so it is refused like any other shape.
    """
    out = f(z)
    n = z.shape[0]
    if not isinstance(out, Tensor):
        raise TypeError(f"f must return a tensor of shape (n,) = ({n},), one value per sample of z, "
                        f"got {type(out).__name__}")
    if tuple(out.shape) != (n,):
        hint = " (a scalar: did f sum or average over the samples?)" if out.dim() == 0 else ""
        raise ValueError(f"f must return one value per sample, a tensor of shape (n,) = ({n},), "
                         f"got shape {tuple(out.shape)}{hint}")
    if not out.is_floating_point():
        raise TypeError(f"f must return floating-point values, got dtype {out.dtype}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError("f returned NaN or infinite values; f(z) must be finite for every sample z")
    if differentiable and not out.requires_grad:
        raise ValueError("f must be differentiable with torch operations: its result has no gradient "
                         "path back to z (was it computed with numpy, .item() or .detach()?)")
    return out


def _noise(n_samples: int, seed: int) -> Tensor:
    check_positive_int("n_samples", n_samples)
    gen = torch.Generator().manual_seed(check_seed("seed", seed))
    return torch.randn(n_samples, generator=gen, dtype=torch.float64)


def reparameterized_gradient(f: Callable[[Tensor], Tensor], mu: float, sigma: float,
                             n_samples: int, seed: int = 0) -> GradientSamples:
    """Pathwise estimates of the gradient of E_{z~N(mu, sigma^2)}[f(z)], one per sample of eps.

    f: differentiable, maps a float64 tensor (n,) to (n,) elementwise. Returns two (n_samples,) tensors.
    z = mu + sigma * eps, eps ~ N(0, 1), so d f(z)/d mu = f'(z) and d f(z)/d sigma = f'(z) * eps.
    """
    _check_f(f)
    mu, sigma = _check_mu_sigma(mu, sigma)
    eps = _noise(n_samples, seed)
    # One copy of (mu, sigma) per sample: the gradient of the summed objective with respect to
    # copy i is then exactly the single-sample estimate i.
    mu_ = torch.full_like(eps, mu, requires_grad=True)
    sigma_ = torch.full_like(eps, sigma, requires_grad=True)
    z = mu_ + sigma_ * eps
    _values(f, z, differentiable=True).sum().backward()
    return GradientSamples(mu_.grad.detach(), sigma_.grad.detach())


def score_function_gradient(f: Callable[[Tensor], Tensor], mu: float, sigma: float,
                            n_samples: int, seed: int = 0) -> GradientSamples:
    """Score-function (REINFORCE) estimates of the gradient of E_{z~N(mu, sigma^2)}[f(z)], one per sample.

    f: maps a float64 tensor (n,) to (n,); it is never differentiated. Returns two (n_samples,) tensors.
    grad E[f(z)] = E[f(z) * grad log N(z; mu, sigma^2)], i.e. f(z) * eps / sigma for mu and
    f(z) * (eps^2 - 1) / sigma for sigma.
    """
    _check_f(f)
    mu, sigma = _check_mu_sigma(mu, sigma)
    eps = _noise(n_samples, seed)
    mu_ = torch.full_like(eps, mu, requires_grad=True)
    sigma_ = torch.full_like(eps, sigma, requires_grad=True)
    # The sample is drawn without a path back to (mu, sigma); only log q carries the gradient.
    z = (mu + sigma * eps).detach()
    log_q = torch.distributions.Normal(mu_, sigma_).log_prob(z)
    (_values(f, z, differentiable=False).detach() * log_q).sum().backward()
    return GradientSamples(mu_.grad.detach(), sigma_.grad.detach())


def square(z: Tensor) -> Tensor:
    """Test function f(z) = z^2, elementwise; E[z^2] = mu^2 + sigma^2 under N(mu, sigma^2)."""
    return z * z


def square_gradient(mu: float, sigma: float) -> tuple[float, float]:
    """Exact gradient of E_{z~N(mu, sigma^2)}[z^2] = mu^2 + sigma^2: returns (2 mu, 2 sigma)."""
    mu, sigma = _check_mu_sigma(mu, sigma)
    return 2.0 * mu, 2.0 * sigma


def square_gradient_variance(mu: float, sigma: float) -> dict[str, float]:
    """Exact per-sample variance of both estimators of d/dmu E[z^2] (f = square).

    Pathwise: 2z = 2(mu + sigma eps), variance 4 sigma^2.
    Score function: z^2 eps / sigma, variance (mu^4 + 18 mu^2 sigma^2 + 15 sigma^4) / sigma^2 - 4 mu^2
    (moments of eps: E eps^2 = 1, E eps^4 = 3, E eps^6 = 15).
    """
    mu, sigma = _check_mu_sigma(mu, sigma)
    reparam = 4.0 * sigma**2
    score = (mu**4 + 18.0 * mu**2 * sigma**2 + 15.0 * sigma**4) / sigma**2 - 4.0 * mu**2
    return {"reparameterized": reparam, "score_function": score}


def spread_of_mean(samples: Tensor, n: int) -> float:
    """Standard deviation of the mean of n samples, measured over disjoint blocks of `samples`.

    samples: (M,) per-sample estimates with M >= 2 n. The M // n blocks of n consecutive samples
    give M // n independent means; their standard deviation shrinks like 1 / sqrt(n).
    """
    check_finite("samples", samples)
    if samples.dim() != 1:
        raise ValueError(f"samples must be one-dimensional (M,), got shape {tuple(samples.shape)}")
    check_positive_int("n", n)
    blocks = samples.shape[0] // n
    if blocks < 2:
        raise ValueError(f"n must be at most len(samples) // 2 = {samples.shape[0] // 2}, got {n}")
    means = samples[: blocks * n].reshape(blocks, n).mean(dim=1)
    return float(means.std())


# ---------------------------------------------------------------------------------------------
# 2. Linear-Gaussian latent model: p(z) = N(0, I_K), p(x|z) = N(W z + b, s^2 I_D)
# ---------------------------------------------------------------------------------------------
def _check_model(x: Tensor, W: Tensor, b: Tensor, s: float) -> tuple[Tensor, float]:
    for name, t in (("x", x), ("W", W), ("b", b)):
        check_finite(name, t)
    if W.dim() != 2:
        raise ValueError(f"W must have shape (D, K), got {tuple(W.shape)}")
    D = W.shape[0]
    if b.shape != (D,):
        raise ValueError(f"b must have shape (D,) = ({D},) to match W, got {tuple(b.shape)}")
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2 or x.shape[1] != D or x.shape[0] == 0:
        raise ValueError(f"x must have shape (N, D) = (N, {D}) with N >= 1, got {tuple(x.shape)}")
    return x, check_positive("s", s)


def linear_gaussian_log_likelihood(x: Tensor, W: Tensor, b: Tensor, s: float) -> Tensor:
    """Exact log p(x) of the linear-Gaussian model, in nats: (N,) for x of shape (N, D).

    Integrating z out gives x ~ N(b, W W^T + s^2 I), a Gaussian whose density we can evaluate.
    """
    x, s = _check_model(x, W, b, s)
    cov = W @ W.T + s**2 * torch.eye(W.shape[0], dtype=W.dtype, device=W.device)
    return torch.distributions.MultivariateNormal(b, covariance_matrix=cov).log_prob(x)


def linear_gaussian_posterior(x: Tensor, W: Tensor, b: Tensor, s: float) -> tuple[Tensor, Tensor]:
    """Exact posterior p(z|x) = N(mean, cov) of the linear-Gaussian model.

    Returns mean (N, K) and cov (K, K), shared by all x:
    cov = (I + W^T W / s^2)^{-1},  mean = cov W^T (x - b) / s^2.
    """
    x, s = _check_model(x, W, b, s)
    eye = torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
    cov = torch.linalg.inv(eye + W.T @ W / s**2)
    mean = (x - b) @ W @ cov / s**2  # cov is symmetric, so this is (cov W^T (x - b) / s^2) per row
    return mean, cov


def _check_q(q_mean: Tensor, q_cov: Tensor, N: int, K: int,
             names: tuple[str, str] = ("q_mean", "q_cov")) -> Tensor:
    mean_name, cov_name = names
    check_finite(mean_name, q_mean)
    check_finite(cov_name, q_cov)
    if q_mean.shape != (N, K):
        raise ValueError(f"{mean_name} must have shape (N, K) = ({N}, {K}), got {tuple(q_mean.shape)}")
    if q_cov.shape not in ((K, K), (N, K, K)):
        raise ValueError(f"{cov_name} must have shape (K, K) or (N, K, K) with K = {K}, "
                         f"got {tuple(q_cov.shape)}")
    check_covariance(cov_name, q_cov)
    return q_cov.expand(N, K, K)


def check_covariance(name: str, cov: Tensor) -> Tensor:
    """Return `cov` if it is a finite, symmetric, positive-definite (K, K) or (N, K, K) matrix.

    Symmetry is checked to a relative tolerance of 1e-6 (1e-4 in float32) of the largest entry;
    definiteness by a Cholesky factorization, the one the KL and the sampling then use, and by the
    smallest eigenvalue, which must stand above rounding noise (10 K eps times the largest).
    """
    check_finite(name, cov)
    given, cov = cov, cov.detach()  # checks read values only; the caller's graph stays as it is
    if not cov.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {cov.dtype}")
    if cov.dim() not in (2, 3) or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (K, K) or a stack (N, K, K), got {tuple(cov.shape)}")
    scale = float(cov.abs().max()) if cov.numel() else 0.0
    tol = (1e-4 if cov.dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-6) * max(scale, 1e-30)
    asym = float((cov - cov.transpose(-1, -2)).abs().max()) if cov.numel() else 0.0
    if asym > tol:
        raise ValueError(f"{name} must be symmetric (a covariance), but it differs from its transpose by "
                         f"up to {asym:.3g}")
    if not cov.numel():
        return given
    info = torch.linalg.cholesky_ex(cov).info
    eig = torch.linalg.eigvalsh(cov)                    # (..., K), ascending
    if bool((info != 0).any()):
        raise ValueError(f"{name} must be positive definite (every eigenvalue > 0), got smallest "
                         f"eigenvalue {float(eig.min()):.3g}")
    # A singular matrix (rank-1 v v^T, say) can pass Cholesky by rounding alone; its log-determinant
    # and inverse would then be rounding noise, so it is refused like any other singular one. The
    # floor is per matrix of a stack: a small, well-conditioned one next to a large one is fine.
    low, high = eig[..., 0].reshape(-1), eig.abs().amax(-1).reshape(-1)
    worst = int((low / high).argmin())
    low, high = float(low[worst]), float(high[worst])
    if low <= 10 * cov.shape[-1] * torch.finfo(cov.dtype).eps * high:
        raise ValueError(f"{name} must be positive definite (every eigenvalue > 0), but its smallest "
                         f"eigenvalue {low:.3g} is rounding noise next to its largest {high:.3g} "
                         "(numerically singular)")
    return given


def linear_gaussian_elbo(x: Tensor, W: Tensor, b: Tensor, s: float, q_mean: Tensor, q_cov: Tensor,
                         n_samples: int | None = None, seed: int = 0) -> Tensor:
    """ELBO of the linear-Gaussian model for q(z|x) = N(q_mean, q_cov), in nats: (N,).

    q_mean: (N, K); q_cov: (K, K) or (N, K, K), symmetric positive definite (a diagonal q is
    torch.diag_embed(variances)). ELBO = E_q[log p(x|z)] - KL(q || N(0, I)); the expectation is
    exact when n_samples is None, else a reparameterised Monte Carlo average over n_samples draws:
    E_q log p(x|z) = -D/2 log(2 pi s^2) - (|x - W m - b|^2 + tr(W S W^T)) / (2 s^2).
    """
    x, s = _check_model(x, W, b, s)
    (N, D), K = x.shape, W.shape[1]
    q_cov = _check_q(q_mean, q_cov, N, K)
    kl = gaussian_kl_full(q_mean, q_cov, torch.zeros_like(q_mean),
                          torch.eye(K, dtype=W.dtype, device=W.device))
    const = -0.5 * D * math.log(2.0 * math.pi * s**2)
    if n_samples is None:
        resid = x - q_mean @ W.T - b
        trace = torch.einsum("dk,nkl,dl->n", W, q_cov, W)
        expected_log_lik = const - (resid.pow(2).sum(1) + trace) / (2.0 * s**2)
    else:
        check_positive_int("n_samples", n_samples)
        gen = torch.Generator(device=x.device).manual_seed(check_seed("seed", seed))
        eps = torch.randn(n_samples, N, K, generator=gen, dtype=x.dtype, device=x.device)
        z = q_mean + torch.einsum("nkl,snl->snk", torch.linalg.cholesky(q_cov), eps)
        resid = x - z @ W.T - b
        expected_log_lik = (const - resid.pow(2).sum(-1) / (2.0 * s**2)).mean(0)
    return expected_log_lik - kl


def gaussian_kl_full(mean_q: Tensor, cov_q: Tensor, mean_p: Tensor, cov_p: Tensor) -> Tensor:
    """KL(N(mean_q, cov_q) || N(mean_p, cov_p)) in nats for full covariances: (N,).

    means: (N, K); covs: (K, K) or (N, K, K).
    KL = 1/2 [tr(S_p^{-1} S_q) + (m_p - m_q)^T S_p^{-1} (m_p - m_q) - K + log det S_p - log det S_q].
    """
    for name, t in (("mean_q", mean_q), ("cov_q", cov_q), ("mean_p", mean_p), ("cov_p", cov_p)):
        check_finite(name, t)
    if mean_q.dim() != 2 or mean_p.shape != mean_q.shape:
        raise ValueError(f"mean_q and mean_p must both have shape (N, K), got {tuple(mean_q.shape)} "
                         f"and {tuple(mean_p.shape)}")
    N, K = mean_q.shape
    cov_q = _check_q(mean_q, cov_q, N, K, ("mean_q", "cov_q"))
    cov_p = _check_q(mean_p, cov_p, N, K, ("mean_p", "cov_p"))
    chol_p = torch.linalg.cholesky(cov_p)
    trace = torch.cholesky_solve(cov_q, chol_p).diagonal(dim1=-2, dim2=-1).sum(-1)
    diff = (mean_p - mean_q).unsqueeze(-1)
    maha = (diff * torch.cholesky_solve(diff, chol_p)).sum((-2, -1))
    logdet_p = 2.0 * chol_p.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    logdet_q = torch.linalg.slogdet(cov_q).logabsdet
    return 0.5 * (trace + maha - K + logdet_p - logdet_q)


# ---------------------------------------------------------------------------------------------
# 3. Monte Carlo KL to the standard normal prior
# ---------------------------------------------------------------------------------------------
class MonteCarloEstimate(NamedTuple):
    """A Monte Carlo mean and its standard error (std of the samples / sqrt(n_samples)), same shape."""
    mean: Tensor
    stderr: Tensor


def gaussian_kl_monte_carlo(mu: Tensor, logvar: Tensor, n_samples: int = 1000,
                            seed: int = 0) -> MonteCarloEstimate:
    """Monte Carlo KL(N(mu, diag exp(logvar)) || N(0, I)) in nats: mean and stderr, each (N,).

    mu, logvar: (N, K). Averages log q(z) - log p(z) over z = mu + exp(logvar / 2) * eps.
    """
    check_finite("mu", mu)
    check_finite("logvar", logvar)
    if mu.dim() != 2 or logvar.shape != mu.shape:
        raise ValueError(f"mu and logvar must both have shape (N, K), got {tuple(mu.shape)} "
                         f"and {tuple(logvar.shape)}")
    check_positive_int("n_samples", n_samples)
    if n_samples < 2:
        raise ValueError(f"n_samples must be an int >= 2 (a standard error needs two), got {n_samples}")
    gen = torch.Generator(device=mu.device).manual_seed(check_seed("seed", seed))
    eps = torch.randn((n_samples, *mu.shape), generator=gen, dtype=mu.dtype, device=mu.device)
    z = mu + (0.5 * logvar).exp() * eps
    # log q(z) - log p(z) per latent dimension; the 2 pi constants cancel.
    log_ratio = 0.5 * (-logvar - eps.pow(2) + z.pow(2)).sum(-1)
    return MonteCarloEstimate(log_ratio.mean(0), log_ratio.std(0) / math.sqrt(n_samples))
