"""Self-checks for the exercises: call e.g. `check_kl_sparsity(my_kl)` after writing `my_kl`.

Each check runs the student's function on fixed random inputs and on edge cases, compares it with the
course library's reference, and either prints one line saying all checks passed or raises `CheckFailed`
with a message about *what* is wrong (shape, a value that must be 0, a sign, NaN, a missing factor),
never *how* the reference computes it. Checks leave the global random state untouched, so seeded cells
after a check still print the same numbers. A function that still raises NotImplementedError (the
homework stub) is passed through unchanged.

`check_numbers(name=value, ...)` is the visible check of a number answer (predict, then check): each
value must be a finite real number; it prints them back. Whether they are right is decided by the
course grader, in a separate process that never runs the notebook's code (coursekit.grading).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NoReturn

import torch
from torch import Tensor

__all__ = ["CheckFailed", "check_kl_sparsity", "check_gaussian_kl", "check_reparameterize",
           "check_corrupt_mask", "check_numbers"]


class CheckFailed(AssertionError):
    """A self-check found a mistake; the message says what to look at."""


# ------------------------------------------------------------------------------------------ helpers
def _check_callable(fn: object) -> Callable[..., Any]:
    if not callable(fn):
        raise TypeError(f"fn must be your function (a callable), got {type(fn).__name__}")
    return fn


def _fail(check: str, message: str) -> NoReturn:
    raise CheckFailed(f"{check}: {message}")


def _call(check: str, fn: Callable[..., Any], args: tuple, shown: str) -> Any:
    """Call the student's function; any error except the homework stub becomes a CheckFailed."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as err:  # the student's bug, reported with the inputs that triggered it
        raise CheckFailed(f"{check}: your function raised {type(err).__name__} ({err}) when called "
                          f"with {shown}") from err


def _tensor_out(check: str, out: Any, shape: tuple[int, ...], shown: str, hint: str = "") -> Tensor:
    """The output must be a floating tensor of `shape` with finite entries."""
    if not isinstance(out, Tensor):
        _fail(check, f"with {shown} your function returned a {type(out).__name__}; return a torch.Tensor "
                     "(stay in torch so gradients can flow: no .item(), .numpy() or math.* calls)")
    if not out.is_floating_point():
        _fail(check, f"with {shown} your function returned dtype {out.dtype}; expected a float tensor")
    if tuple(out.shape) != shape:
        _fail(check, f"with {shown} your function returned shape {tuple(out.shape)}, expected {shape}. {hint}")
    if not bool(torch.isfinite(out).all()):
        bad = "NaN" if bool(torch.isnan(out).any()) else "inf"
        _fail(check, f"with {shown} your function returned {bad}; every value must be finite")
    return out


def _close(a: Tensor, b: Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    return bool(torch.allclose(a.detach().double(), b.detach().double(), rtol=rtol, atol=atol))


def _passed(check: str, n: int) -> None:
    print(f"{check}: all {n} checks passed.")


def _rand(*shape: int, seed: int, low: float = 0.0, high: float = 1.0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(*shape, generator=g)


def _bernoulli_kl(p: Tensor, q: Tensor) -> Tensor:
    # elementwise KL(p || q) for diagnosing swapped arguments; both strictly inside (0, 1) here
    return p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))


# ------------------------------------------------------------------------------------------- checks
def check_kl_sparsity(fn: Callable[[float, Tensor], Tensor]) -> None:
    """Check fn(rho, rho_hat) -> KL(rho || rho_hat) elementwise, same shape as rho_hat (nats).

    rho: float in (0, 1); rho_hat: tensor in [0, 1], e.g. (hidden,).
    """
    from funml_lib.losses import kl_sparsity as ref

    name = "check_kl_sparsity"
    fn = _check_callable(fn)
    rho, rho_hat = 0.05, _rand(8, seed=1, low=0.01, high=0.99)
    shown = "rho=0.05 and rho_hat of shape (8,)"
    out = _call(name, fn, (rho, rho_hat.clone()), shown)
    expected = ref(rho, rho_hat)
    if isinstance(out, Tensor) and out.dim() == 0 and _close(out, expected.sum()):
        _fail(name, "you returned the sum over units; return one KL value per hidden unit (same shape as "
                    "rho_hat). The sum over j happens in the loss.")
    out = _tensor_out(name, out, (8,), shown, "The result must have the shape of rho_hat.")

    at_rho = _call(name, fn, (0.2, torch.full((3,), 0.2)), "rho=0.2 and rho_hat=0.2")
    at_rho = _tensor_out(name, at_rho, (3,), "rho=0.2 and rho_hat=0.2")
    if not _close(at_rho, torch.zeros(3), atol=1e-6):
        _fail(name, f"KL(rho || rho_hat) must be 0 when rho_hat equals rho; at rho=rho_hat=0.2 you got "
                    f"{float(at_rho[0]):.4g}")
    if _close(out, _bernoulli_kl(rho_hat, torch.full_like(rho_hat, rho))):
        _fail(name, "you computed KL(rho_hat || rho): the target rho is the first argument, the "
                    "distribution whose probabilities weight the two log terms")
    if _close(out, rho * torch.log(rho / rho_hat)):
        _fail(name, "only the 'unit on' term is there; a Bernoulli KL also has the 'unit off' term "
                    "weighted by (1 - rho)")
    if bool((out < -1e-6).any()):
        _fail(name, "a KL divergence is never negative, but some of your values are; check the sign of "
                    "each log term (log(rho / rho_hat), not log(rho_hat / rho))")
    if not _close(out, expected):
        i = int((out - expected).abs().argmax())
        _fail(name, f"at rho=0.05, rho_hat={float(rho_hat[i]):.4f} expected {float(expected[i]):.5f}, "
                    f"got {float(out[i]):.5f}")

    grid = _rand(2, 3, seed=2, low=0.05, high=0.95)
    out2 = _tensor_out(name, _call(name, fn, (0.3, grid), "rho=0.3, rho_hat of shape (2, 3)"), (2, 3),
                       "rho=0.3, rho_hat of shape (2, 3)", "Work elementwise, whatever the shape.")
    if not _close(out2, ref(0.3, grid)):
        _fail(name, "values are wrong for rho=0.3 and a (2, 3) rho_hat; is rho hard-coded to 0.05?")

    edges = torch.tensor([0.0, 1.0])
    out3 = _call(name, fn, (0.05, edges), "rho_hat = [0.0, 1.0]")
    if isinstance(out3, Tensor) and not bool(torch.isfinite(out3).all()):
        _fail(name, "at rho_hat = 0 or 1 you return inf or NaN. A sigmoid unit that is always off has "
                    "rho_hat = 0 exactly in float32: clamp rho_hat to [1e-6, 1 - 1e-6] before the logs")
    _tensor_out(name, out3, (2,), "rho_hat = [0.0, 1.0]")

    leaf = rho_hat.clone().requires_grad_(True)
    out4 = _call(name, fn, (rho, leaf), shown)
    if not (isinstance(out4, Tensor) and out4.requires_grad):
        _fail(name, "no gradient flows back to rho_hat; build the result from torch operations only")
    out4.sum().backward()
    if leaf.grad is None or not _close(leaf.grad, (1 - rho) / (1 - rho_hat) - rho / rho_hat, rtol=1e-3):
        _fail(name, "the gradient with respect to rho_hat is wrong (or missing)")
    _passed(name, 7)


def check_gaussian_kl(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check fn(mu, logvar) -> KL(N(mu, diag exp(logvar)) || N(0, I)) per sample, shape (N,), nats.

    mu, logvar: (N, latent_dim).
    """
    from funml_lib.losses import gaussian_kl as ref

    name = "check_gaussian_kl"
    fn = _check_callable(fn)
    zeros = torch.zeros(3, 2)
    out0 = _call(name, fn, (zeros, zeros.clone()), "mu = 0, logvar = 0")
    if isinstance(out0, Tensor) and out0.dim() == 0:
        _fail(name, "you returned a single number; return one KL per sample, shape (N,), summed over the "
                    "latent dimensions only")
    out0 = _tensor_out(name, out0, (3,), "mu and logvar of shape (3, 2)", "Sum over the latent dimensions.")
    if not _close(out0, torch.zeros(3), atol=1e-6):
        _fail(name, f"KL(N(0, I) || N(0, I)) must be 0, got {float(out0[0]):.4g}")

    one = _tensor_out(name, _call(name, fn, (torch.ones(1, 1), torch.zeros(1, 1)), "mu=1, logvar=0"),
                      (1,), "mu=1, logvar=0")
    if math.isclose(float(one), 1.0, rel_tol=1e-4):
        _fail(name, "for mu = 1, logvar = 0 the KL is 0.5 nats and you got 1.0: a factor 1/2 is missing")
    if float(one) < 0:
        _fail(name, f"a KL divergence is never negative; for mu = 1, logvar = 0 you got {float(one):.4g}. "
                    "Check the overall sign")

    mu, logvar = _rand(5, 3, seed=5, low=-2, high=2), _rand(5, 3, seed=6, low=-3, high=1)
    shown = "mu, logvar of shape (5, 3)"
    out = _tensor_out(name, _call(name, fn, (mu, logvar), shown), (5,), shown)
    expected = ref(mu, logvar)
    if _close(out, expected / 3):
        _fail(name, "your values are 3 times too small for a 3-d latent: sum over latent dimensions, "
                    "do not average")
    if bool((out < -1e-6).any()):
        _fail(name, "some of your values are negative; a KL divergence is never negative (check the sign "
                    "of each term)")
    var_only = _tensor_out(name, _call(name, fn, (torch.zeros(1, 1), torch.full((1, 1), math.log(4.0))),
                                       "mu=0, logvar=log 4"), (1,), "mu=0, logvar=log 4")
    if not math.isclose(float(var_only), 0.5 * (3.0 - math.log(4.0)), rel_tol=1e-4):
        _fail(name, f"for mu = 0 and variance 4 (logvar = log 4) expected {0.5 * (3 - math.log(4)):.5f}, "
                    f"got {float(var_only):.5f}: logvar is the log of the variance, exp(logvar) the variance")
    if not _close(out, expected):
        _fail(name, f"for random mu, logvar expected {float(expected[0]):.5f} in the first row, "
                    f"got {float(out[0]):.5f}")
    _passed(name, 5)


def check_reparameterize(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check fn(mu, logvar) -> z = mu + sigma * eps with sigma = exp(logvar / 2), eps ~ N(0, I).

    mu, logvar: (N, latent_dim); z: (N, latent_dim). Checked statistically (fixed seed) and by gradient.
    """
    name = "check_reparameterize"
    fn = _check_callable(fn)
    n = 4000
    # two latent dimensions with different spreads: sigma = 2 (variance 4) and sigma = 0.5 (variance 0.25)
    mu_row, sigma = torch.tensor([3.0, -1.0]), torch.tensor([2.0, 0.5])
    mu = mu_row.repeat(n, 1).requires_grad_(True)
    logvar = (2 * torch.log(sigma)).repeat(n, 1).requires_grad_(True)
    shown = f"mu = [3, -1] and logvar = [log 4, log 0.25] repeated to shape ({n}, 2)"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        z = _tensor_out(name, _call(name, fn, (mu, logvar), shown), (n, 2), shown, "z has the shape of mu.")
        z2 = _call(name, fn, (mu, logvar), shown)
    mean, std = z.detach().mean(0), z.detach().std(0)
    if _close(z, mu, rtol=0, atol=1e-6):
        _fail(name, "your z has no noise at all; z must be a random sample around mu")
    if float(std.min()) < 1e-6:
        _fail(name, "every sample got the same noise; draw one eps per entry (the shape of mu)")
    if isinstance(z2, Tensor) and torch.equal(z.detach(), z2.detach()):
        _fail(name, "two calls returned the same z; draw fresh noise on every call (do not re-seed inside)")
    if _close(mean, torch.zeros(2), atol=0.15):
        _fail(name, "your samples are centred at 0, expected mu = [3, -1]: add mu to the scaled noise")
    if _close(std, sigma ** 2, rtol=0.05, atol=0):
        _fail(name, "the spread of z is the variance exp(logvar), expected the standard deviation: "
                    "sigma = exp(logvar / 2)")
    if _close(std, torch.log(sigma ** 2).abs(), rtol=0.05, atol=0):
        _fail(name, "the spread of z follows logvar itself; logvar is a log-variance: sigma = exp(logvar / 2)")
    if not (_close(mean, mu_row, rtol=0, atol=0.15) and _close(std, sigma, rtol=0.05, atol=0)):
        _fail(name, f"expected per-dimension mean [3, -1] and std [2, 0.5], got mean "
                    f"[{float(mean[0]):.2f}, {float(mean[1]):.2f}], "
                    f"std [{float(std[0]):.2f}, {float(std[1]):.2f}]")
    if not z.requires_grad:
        _fail(name, "no gradient flows from z back to mu and logvar; do not detach or sample inside "
                    "torch.no_grad(): the trick exists so that backpropagation goes through z")
    z.sum().backward()
    if mu.grad is None or float(mu.grad.abs().sum()) == 0.0:
        _fail(name, "no gradient reaches mu: a sampler such as torch.normal(mu, sigma) has no path back; "
                    "build z from mu, sigma and a separately drawn eps")
    if not _close(mu.grad, torch.ones_like(mu)):
        _fail(name, "dz/dmu must be 1 for every entry; the noise must be added to mu, not mixed into it")
    if logvar.grad is None or float(logvar.grad.abs().sum()) == 0.0:
        _fail(name, "no gradient reaches logvar; scale eps by a torch expression of logvar")
    _passed(name, 6)


def check_corrupt_mask(fn: Callable[[Tensor, float], Tensor]) -> None:
    """Check fn(x, fraction) -> x_tilde: each pixel set to 0 with probability `fraction`, others unchanged.

    x: (N, 784) in [0, 1]; fraction in [0, 1].
    """
    name = "check_corrupt_mask"
    fn = _check_callable(fn)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        x = torch.full((200, 784), 0.7)
        shown = "x = 0.7 everywhere (200, 784) and fraction = 0.3"
        x_tilde = _tensor_out(name, _call(name, fn, (x, 0.3), shown), (200, 784), shown,
                              "x_tilde has the shape of x.")
        if not torch.equal(x, torch.full((200, 784), 0.7)):
            _fail(name, "your function changed its input x in place; return a new tensor")
        dropped = float((x_tilde == 0).float().mean())
        if abs(dropped - 0.7) < 0.02:
            _fail(name, f"{dropped:.0%} of the pixels are zero, expected 30%: `fraction` is the share of "
                        "pixels to remove, not to keep")
        if abs(dropped - 0.3) > 0.02:
            _fail(name, f"with fraction = 0.3 about 30% of the pixels should be 0, got {dropped:.1%}")
        kept = x_tilde[x_tilde != 0]
        if not _close(kept, torch.full_like(kept, 0.7)):
            _fail(name, "pixels that are not masked must keep their value exactly (multiply by 0 or 1 only)")
        for f in (0.0, 1.0):
            out = _tensor_out(name, _call(name, fn, (x, f), f"fraction = {f}"), (200, 784), f"fraction = {f}")
            if not _close(out, x * (1 - f)):
                _fail(name, f"with fraction = {f:g} expected {'x unchanged' if f == 0 else 'all zeros'}")
    _passed(name, 5)


def check_numbers(**answers: Any) -> None:
    """Check that every answer of a number exercise is a finite real number and print them back.

    check_numbers(kl_value=kl_value, predicted_rank=predicted_rank)
    A bool, a string, a tensor with more than one entry, NaN or infinity fails with a CheckFailed
    that names the variable. A one-entry tensor or numpy scalar is read as its number.
    """
    name = "check_numbers"
    if not answers:
        raise TypeError("check_numbers needs your answers as keywords, e.g. check_numbers(kl=kl)")
    shown = []
    for var, value in answers.items():
        if (isinstance(value, bool) or type(value).__name__ == "bool_"
                or "bool" in str(getattr(value, "dtype", ""))):
            _fail(name, f"{var} must be a number, got a boolean ({value!r:.60})")
        if not isinstance(value, (int, float)) and not (
                hasattr(value, "__float__") and getattr(value, "shape", ()) in ((), (1,), [])):
            _fail(name, f"{var} must be a number, got {type(value).__name__} ({value!r:.60})")
        try:
            number = float(value)
        except (TypeError, ValueError, RuntimeError) as err:
            _fail(name, f"{var} must be a number, got {type(value).__name__} ({err})")
        if not math.isfinite(number):
            _fail(name, f"{var} must be a finite number, got {number}")
        # a whole number is shown whole (1569784, not 1.56978e+06, which looks rounded)
        whole = float(number).is_integer() and abs(number) < 2**53
        shown.append(f"{var} = {int(number)}" if whole else f"{var} = {number:.6g}")
    print(f"{name}: {', '.join(shown)} (the course grader decides whether they are right)")
