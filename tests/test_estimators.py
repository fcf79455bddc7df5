"""Numeric checks of every derivation in chapter 4 (ELBO, Gaussian KL, gradient estimators)."""
import math

import pytest
import torch

from funml_lib.estimators import (
    check_covariance,
    gaussian_kl_full,
    gaussian_kl_monte_carlo,
    linear_gaussian_elbo,
    linear_gaussian_log_likelihood,
    linear_gaussian_posterior,
    reparameterized_gradient,
    score_function_gradient,
    spread_of_mean,
    square,
    square_gradient,
    square_gradient_variance,
)
from funml_lib.losses import gaussian_kl

F64 = torch.float64
ESTIMATORS = [reparameterized_gradient, score_function_gradient]


# ------------------------------------------------------------------------------ gradient estimators
def test_exact_gradient_and_variances_by_hand():
    # E[z^2] = mu^2 + sigma^2, so the gradient at (1, 1) is (2, 2); at mu = sigma = 1 the score-function
    # variance is E[(1 + eps)^4 eps^2] - 2^2 = (1 + 18 + 15) - 4 = 30 and the pathwise one 4 sigma^2 = 4.
    assert square_gradient(1.0, 1.0) == (2.0, 2.0)
    assert square_gradient(-3.0, 0.5) == (-6.0, 1.0)
    assert square_gradient_variance(1.0, 1.0) == {"reparameterized": 4.0, "score_function": 30.0}


def test_single_sample_estimates_match_their_formulas():
    eps = torch.randn(5, generator=torch.Generator().manual_seed(3), dtype=F64)
    mu, sigma = 0.5, 2.0
    z = mu + sigma * eps
    r = reparameterized_gradient(square, mu, sigma, n_samples=5, seed=3)
    s = score_function_gradient(square, mu, sigma, n_samples=5, seed=3)
    torch.testing.assert_close(r.d_mu, 2 * z)
    torch.testing.assert_close(r.d_sigma, 2 * z * eps)
    torch.testing.assert_close(s.d_mu, z**2 * eps / sigma)
    torch.testing.assert_close(s.d_sigma, z**2 * (eps**2 - 1) / sigma)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("mu, sigma", [(1.0, 1.0), (-2.0, 0.5)])
def test_both_estimators_are_unbiased(estimator, mu, sigma):
    n = 200_000
    g = estimator(square, mu, sigma, n_samples=n, seed=0)
    for samples, exact in zip(g, square_gradient(mu, sigma)):
        stderr = float(samples.std()) / math.sqrt(n)
        assert abs(float(samples.mean()) - exact) < 5 * stderr


def test_empirical_variances_match_closed_form():
    n = 400_000
    exact = square_gradient_variance(1.0, 1.0)
    r = reparameterized_gradient(square, 1.0, 1.0, n_samples=n, seed=1).d_mu.var()
    s = score_function_gradient(square, 1.0, 1.0, n_samples=n, seed=1).d_mu.var()
    assert float(r) == pytest.approx(exact["reparameterized"], rel=0.02)
    assert float(s) == pytest.approx(exact["score_function"], rel=0.05)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda f: f.__name__)
def test_estimators_are_deterministic_under_a_seed(estimator):
    a = estimator(square, 0.3, 1.5, n_samples=100, seed=7)
    b = estimator(square, 0.3, 1.5, n_samples=100, seed=7)
    c = estimator(square, 0.3, 1.5, n_samples=100, seed=8)
    assert torch.equal(a.d_mu, b.d_mu) and torch.equal(a.d_sigma, b.d_sigma)
    assert not torch.equal(a.d_mu, c.d_mu)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda f: f.__name__)
def test_estimators_reject_bad_arguments(estimator):
    with pytest.raises(ValueError, match="sigma must be a finite number > 0, got 0"):
        estimator(square, 0.0, 0.0, n_samples=10)
    with pytest.raises(ValueError, match="mu must be a finite number, got nan"):
        estimator(square, float("nan"), 1.0, n_samples=10)
    with pytest.raises(ValueError, match="n_samples must be an int >= 1, got 0"):
        estimator(square, 0.0, 1.0, n_samples=0)
    with pytest.raises(TypeError, match=r"^seed must be an int in \[0, 2\*\*64 - 1\], got float$"):
        estimator(square, 0.0, 1.0, n_samples=10, seed=1.5)
    for seed in (-1, 2**64):
        with pytest.raises(ValueError, match=rf"^seed must be an int in \[0, 2\*\*64 - 1\], got {seed}$"):
            estimator(square, 0.0, 1.0, n_samples=10, seed=seed)


def test_spread_of_mean_by_hand_and_its_square_root_law():
    # blocks [0, 2] and [4, 6] have means 1 and 5, whose sample standard deviation is sqrt(8)
    assert spread_of_mean(torch.tensor([0.0, 2.0, 4.0, 6.0]), 2) == pytest.approx(math.sqrt(8))
    samples = torch.randn(100_000, generator=torch.Generator().manual_seed(0), dtype=F64)
    assert spread_of_mean(samples, 100) == pytest.approx(0.1, rel=0.1)
    with pytest.raises(ValueError, match=r"n must be at most len\(samples\) // 2 = 2, got 3"):
        spread_of_mean(torch.zeros(4), 3)
    with pytest.raises(ValueError, match=r"samples must be one-dimensional"):
        spread_of_mean(torch.zeros(4, 2), 1)


# ------------------------------------------------------------------------------ linear-Gaussian model
@pytest.fixture
def model():
    gen = torch.Generator().manual_seed(0)
    D, K, N = 6, 2, 5
    W = torch.randn(D, K, generator=gen, dtype=F64)
    b = torch.randn(D, generator=gen, dtype=F64)
    s = 0.7
    z = torch.randn(N, K, generator=gen, dtype=F64)
    x = z @ W.T + b + s * torch.randn(N, D, generator=gen, dtype=F64)
    return x, W, b, s


def random_q(N, K, seed, full):
    gen = torch.Generator().manual_seed(seed)
    mean = torch.randn(N, K, generator=gen, dtype=F64)
    if full:
        A = torch.randn(N, K, K, generator=gen, dtype=F64)
        return mean, A @ A.transpose(1, 2) + 0.1 * torch.eye(K, dtype=F64)
    return mean, torch.diag_embed(torch.rand(N, K, generator=gen, dtype=F64) + 0.05)


def test_one_dimensional_model_by_hand():
    # x = 2 z + 1 + noise, z ~ N(0, 1), noise ~ N(0, 1): x ~ N(1, 5); posterior var 1/(1 + 4), mean 0.4 (x - 1)
    W, b, x = torch.tensor([[2.0]], dtype=F64), torch.tensor([1.0], dtype=F64), torch.tensor([[1.0], [3.5]], dtype=F64)
    logp = linear_gaussian_log_likelihood(x, W, b, 1.0)
    torch.testing.assert_close(logp, torch.tensor([-0.5 * math.log(2 * math.pi * 5),
                                                   -0.5 * math.log(2 * math.pi * 5) - 2.5**2 / 10], dtype=F64))
    mean, cov = linear_gaussian_posterior(x, W, b, 1.0)
    torch.testing.assert_close(mean, torch.tensor([[0.0], [1.0]], dtype=F64))
    torch.testing.assert_close(cov, torch.tensor([[0.2]], dtype=F64))


def test_posterior_is_bayes_rule(model):
    # log p(z|x) = log p(z) + log p(x|z) - log p(x) at an arbitrary z
    x, W, b, s = model
    mean, cov = linear_gaussian_posterior(x, W, b, s)
    z = torch.full((x.shape[0], W.shape[1]), 0.3, dtype=F64)
    N = torch.distributions
    prior = N.MultivariateNormal(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64)).log_prob(z)
    lik = N.Normal(z @ W.T + b, s).log_prob(x).sum(1)
    post = N.MultivariateNormal(mean, covariance_matrix=cov).log_prob(z)
    torch.testing.assert_close(post, prior + lik - linear_gaussian_log_likelihood(x, W, b, s))


@pytest.mark.parametrize("full", [False, True], ids=["diagonal-q", "full-q"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_elbo_is_below_log_likelihood_by_the_posterior_kl(model, full, seed):
    x, W, b, s = model
    q_mean, q_cov = random_q(x.shape[0], W.shape[1], seed, full)
    logp = linear_gaussian_log_likelihood(x, W, b, s)
    elbo = linear_gaussian_elbo(x, W, b, s, q_mean, q_cov)
    assert bool((elbo <= logp).all())
    post_mean, post_cov = linear_gaussian_posterior(x, W, b, s)
    torch.testing.assert_close(logp - elbo, gaussian_kl_full(q_mean, q_cov, post_mean, post_cov))


def test_elbo_equals_log_likelihood_at_the_true_posterior(model):
    x, W, b, s = model
    mean, cov = linear_gaussian_posterior(x, W, b, s)
    gap = linear_gaussian_log_likelihood(x, W, b, s) - linear_gaussian_elbo(x, W, b, s, mean, cov)
    assert float(gap.abs().max()) < 1e-5


def test_monte_carlo_elbo_agrees_with_closed_form(model):
    x, W, b, s = model
    q_mean, q_cov = random_q(x.shape[0], W.shape[1], 4, full=True)
    exact = linear_gaussian_elbo(x, W, b, s, q_mean, q_cov)
    n = 20_000
    mc = linear_gaussian_elbo(x, W, b, s, q_mean, q_cov, n_samples=n, seed=0)
    # tolerance from the spread of single-sample estimates: 5 standard errors of an n-sample mean
    singles = torch.stack([linear_gaussian_elbo(x, W, b, s, q_mean, q_cov, n_samples=1, seed=i)
                           for i in range(100)])
    assert bool(((mc - exact).abs() < 5 * singles.std(0) / math.sqrt(n)).all())
    assert torch.equal(mc, linear_gaussian_elbo(x, W, b, s, q_mean, q_cov, n_samples=n, seed=0))


def test_linear_gaussian_rejects_bad_shapes(model):
    x, W, b, s = model
    with pytest.raises(ValueError, match=r"b must have shape \(D,\) = \(6,\)"):
        linear_gaussian_log_likelihood(x, W, b[:3], s)
    with pytest.raises(ValueError, match=r"x must have shape \(N, D\) = \(N, 6\)"):
        linear_gaussian_posterior(x[:, :3], W, b, s)
    with pytest.raises(ValueError, match="s must be a finite number > 0, got -1"):
        linear_gaussian_log_likelihood(x, W, b, -1.0)
    with pytest.raises(ValueError, match=r"q_cov must have shape \(K, K\) or \(N, K, K\) with K = 2"):
        linear_gaussian_elbo(x, W, b, s, torch.zeros(5, 2, dtype=F64), torch.eye(3, dtype=F64))
    with pytest.raises(ValueError, match="W contains NaN"):
        linear_gaussian_log_likelihood(x, W * float("nan"), b, s)


# ------------------------------------------------------------------------------ Gaussian KL
def test_full_kl_by_hand_and_against_torch():
    zeros, eye = torch.zeros(1, 3, dtype=F64), torch.eye(3, dtype=F64)
    assert float(gaussian_kl_full(zeros, eye, zeros, eye)) == 0.0
    # KL(N(0, 4) || N(1, 1)) in 1-d = 0.5 (4 + 1 - 1 - log 4)
    kl = gaussian_kl_full(torch.zeros(1, 1, dtype=F64), torch.tensor([[4.0]], dtype=F64),
                          torch.ones(1, 1, dtype=F64), torch.tensor([[1.0]], dtype=F64))
    assert float(kl) == pytest.approx(0.5 * (4 - math.log(4)))
    mq, cq = random_q(4, 3, 5, full=True)
    mp, cp = random_q(4, 3, 6, full=True)
    MVN = torch.distributions.MultivariateNormal
    expected = torch.distributions.kl_divergence(MVN(mq, covariance_matrix=cq), MVN(mp, covariance_matrix=cp))
    torch.testing.assert_close(gaussian_kl_full(mq, cq, mp, cp), expected)


def test_monte_carlo_kl_agrees_with_closed_form_gaussian_kl():
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(8, 4, generator=gen)
    logvar = torch.randn(8, 4, generator=gen)
    mc = gaussian_kl_monte_carlo(mu, logvar, n_samples=20_000, seed=0)
    exact = gaussian_kl(mu, logvar)
    assert bool(((mc.mean - exact).abs() < 5 * mc.stderr).all())
    assert mc.mean.shape == mc.stderr.shape == (8,)


def test_monte_carlo_kl_of_the_prior_is_exactly_zero():
    # q = p: log q(z) - log p(z) = 0 for every sample, so the estimate has no noise at all
    mc = gaussian_kl_monte_carlo(torch.zeros(2, 3), torch.zeros(2, 3), n_samples=10)
    assert torch.equal(mc.mean, torch.zeros(2)) and torch.equal(mc.stderr, torch.zeros(2))


def test_monte_carlo_kl_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"mu and logvar must both have shape \(N, K\)"):
        gaussian_kl_monte_carlo(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="n_samples must be an int >= 2"):
        gaussian_kl_monte_carlo(torch.zeros(2, 3), torch.zeros(2, 3), n_samples=1)
    with pytest.raises(ValueError, match="logvar contains"):
        gaussian_kl_monte_carlo(torch.zeros(2, 3), torch.full((2, 3), float("inf")))


def test_every_seeded_estimator_checks_its_seed(model):
    x, W, b, s = model
    q_mean, q_cov = linear_gaussian_posterior(x, W, b, s)
    seed_error = r"^seed must be an int in \[0, 2\*\*64 - 1\], got "
    with pytest.raises(ValueError, match=seed_error + "18446744073709551616$"):
        linear_gaussian_elbo(x, W, b, s, q_mean, q_cov, n_samples=10, seed=2**64)
    with pytest.raises(TypeError, match=seed_error + "str$"):
        linear_gaussian_elbo(x, W, b, s, q_mean, q_cov, n_samples=10, seed="1")
    with pytest.raises(ValueError, match=seed_error + "-3$"):
        gaussian_kl_monte_carlo(torch.zeros(2, 3), torch.zeros(2, 3), seed=-3)
    with pytest.raises(TypeError, match=seed_error + "float$"):
        gaussian_kl_monte_carlo(torch.zeros(2, 3), torch.zeros(2, 3), seed=0.5)
    assert gaussian_kl_monte_carlo(torch.zeros(2, 3), torch.zeros(2, 3), seed=2**64 - 1).mean.shape == (2,)


# ---------------------------------------------------------------- what the functions are given (issue 21)
def test_f_must_return_one_value_per_sample():
    from funml_lib.estimators import reparameterized_gradient, score_function_gradient

    for estimator in (reparameterized_gradient, score_function_gradient):
        with pytest.raises(ValueError) as err:  # a scalar would be broadcast into a wrong gradient
            estimator(lambda t: (t * t).sum(), 1.0, 1.0, 8)
        assert str(err.value) == ("f must return one value per sample, a tensor of shape (n,) = (8,), "
                                  "got shape () (a scalar: did f sum or average over the samples?)")
        with pytest.raises(ValueError, match=r"got shape \(8, 2\)$"):
            estimator(lambda t: torch.stack([t, t], 1), 1.0, 1.0, 8)
        with pytest.raises(TypeError, match="f must return a tensor of shape \\(n,\\) = \\(8,\\), one value "
                                            "per sample of z, got float"):
            estimator(lambda t: 1.0, 1.0, 1.0, 8)
        with pytest.raises(ValueError, match="f returned NaN or infinite values"):
            estimator(lambda t: t.log(), -5.0, 1.0, 8)
        with pytest.raises(TypeError, match="f must be a function of a tensor z of shape \\(n,\\), got int"):
            estimator(3, 1.0, 1.0, 8)
    with pytest.raises(ValueError, match="f must be differentiable with torch operations"):
        reparameterized_gradient(lambda t: t.detach() ** 2, 1.0, 1.0, 8)
    # the reference function still gives the exact mean gradient 2 mu = 2
    grads = score_function_gradient(lambda t: t * t, 1.0, 1.0, 200_000)
    assert float(grads.d_mu.mean()) == pytest.approx(2.0, abs=0.05)


def test_gaussian_kl_full_needs_symmetric_positive_definite_covariances():
    from funml_lib.estimators import check_covariance, gaussian_kl_full

    m = torch.zeros(1, 2, dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)
    with pytest.raises(ValueError) as err:  # the case: KL = -2 without an error before
        gaussian_kl_full(m, -eye, m, eye)
    assert str(err.value) == ("cov_q must be positive definite (every eigenvalue > 0), got smallest "
                              "eigenvalue -1")
    with pytest.raises(ValueError, match="cov_p must be symmetric \\(a covariance\\), but it differs from "
                                         "its transpose by up to 0.5"):
        gaussian_kl_full(m, eye, m, torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="cov_p contains NaN; every entry must be finite"):
        gaussian_kl_full(m, eye, m, torch.full((2, 2), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match=r"cov_p must have shape \(K, K\) or \(N, K, K\) with K = 2"):
        gaussian_kl_full(m, eye, m, torch.eye(3, dtype=torch.float64))
    assert float(gaussian_kl_full(m, eye, m, eye)[0]) == 0.0  # KL of a distribution to itself
    with pytest.raises(ValueError, match="smallest eigenvalue 0$"):
        check_covariance("S", torch.zeros(2, 2))  # singular: semi-definite is not enough


def test_singularity_floor_is_per_matrix_of_a_stack():
    # a well-conditioned 1e-7 I next to I in one float32 stack was refused as "numerically singular"
    stack = torch.stack([torch.eye(2) * 1e-7, torch.eye(2)])
    assert check_covariance("cov", stack) is stack
    m = torch.zeros(2, 2)
    kl = gaussian_kl_full(m, stack, m, torch.eye(2))
    assert kl[1] == 0 and float(kl[0]) == pytest.approx(0.5 * (2e-7 - 2 - 2 * math.log(1e-7)), rel=1e-4)
    with pytest.raises(ValueError, match="must be positive definite"):  # a singular one in the stack still is
        check_covariance("cov", torch.stack([torch.ones(2, 2) * (1 + 1e-9), torch.eye(2)]).double())
