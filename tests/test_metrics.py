"""Metrics on models built by hand so the right answer is known: identity AE, a VAE whose decoder ignores z."""
import math

import pytest
import torch

from funml_lib.losses import bernoulli_nll, gaussian_kl
from funml_lib import metrics
from funml_lib.metrics import (activations, evaluating, importance_sampled_nll, negative_elbo, reconstruction_mse,
                               sparsity_stats)
from funml_lib.models import VAE, FCAutoencoder, PyTorchExamplesVAE, SparseAutoencoder

LN2 = math.log(2.0)


def _binary(n: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, 784, generator=torch.Generator().manual_seed(seed)) > 0.7).float()


def _identity_ae() -> FCAutoencoder:
    """Linear AE 784 -> 784 -> 784 with W = I, b = 0: x_hat = x exactly."""
    model = FCAutoencoder(latent_dim=784, hidden_dims=(), nonlinear=False)
    with torch.no_grad():
        for layer in (model.encoder[0], model.decoder[0]):
            layer.weight.copy_(torch.eye(784))
            layer.bias.zero_()
    return model


def _vae_ignoring_z(mu: float = 0.0, logit_bias: torch.Tensor | None = None, latent_dim: int = 2) -> VAE:
    """VAE with q(z|x) = N(mu 1, I) for every x and a decoder that ignores z: p(x|z) = Bernoulli(sigmoid(b)).

    Then p(x) = p(x|z) for every z, so -log p(x) = sum_p BCE-with-logits(b_p, x_p) in closed form, and
    -ELBO = -log p(x) + KL(N(mu 1, I) || N(0, I)) = -log p(x) + 0.5 * latent_dim * mu^2.
    """
    model = VAE(latent_dim=latent_dim, hidden_dim=8)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.to_mu.bias.fill_(mu)
        if logit_bias is not None:
            model.to_logits.bias.copy_(logit_bias)
    return model


# -------------------------------------------------------------------------------- reconstruction error
def test_reconstruction_mse_of_identity_is_zero():
    x = torch.rand(10, 784, generator=torch.Generator().manual_seed(0))
    assert reconstruction_mse(_identity_ae(), x, batch_size=3) == 0.0


def test_reconstruction_mse_hand_value():
    x = torch.full((4, 784), 0.25)
    # identity reconstructs 0.25 everywhere; every pixel is 0.1 off the target: (0.1)^2 = 0.01
    assert reconstruction_mse(_identity_ae(), x, target=x + 0.1) == pytest.approx(0.01, rel=1e-5)


def test_reconstruction_mse_of_vae_uses_posterior_mean():
    torch.manual_seed(0)
    model, x = VAE(latent_dim=3, hidden_dim=16), torch.rand(6, 784)
    expected = ((model.decode(model.encode(x)[0]) - x) ** 2).mean().item()
    assert reconstruction_mse(model, x) == pytest.approx(expected, rel=1e-5)
    assert reconstruction_mse(model, x) == reconstruction_mse(model, x)  # deterministic


def test_metrics_restore_train_mode():
    model, x = SparseAutoencoder(hidden_dim=8), torch.rand(3, 784)
    seen = []
    model.encoder.register_forward_hook(lambda m, i, o: seen.append(m.training))
    model.train()
    reconstruction_mse(model, x)
    assert seen == [False] and model.training
    model.eval()
    activations(model, x)
    assert not model.training


def test_reconstruction_mse_rejects_bad_input():
    model = _identity_ae()
    with pytest.raises(ValueError, match=r"x must have shape \(N, 784\), got \(3, 28, 28\)"):
        reconstruction_mse(model, torch.rand(3, 28, 28))
    with pytest.raises(ValueError, match="x contains NaN"):
        reconstruction_mse(model, torch.full((3, 784), float("nan")))
    with pytest.raises(ValueError, match=r"target must have the shape of x \(3, 784\), got \(2, 784\)"):
        reconstruction_mse(model, torch.rand(3, 784), target=torch.rand(2, 784))
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        reconstruction_mse(model, torch.rand(3, 784), batch_size=0)


# ---------------------------------------------------------------------------------------- activations
def test_activations_equal_encode_in_batches():
    torch.manual_seed(0)
    model, x = SparseAutoencoder(hidden_dim=16), torch.rand(10, 784)
    z = activations(model, x, batch_size=4)
    assert z.shape == (10, 16) and not z.requires_grad
    torch.testing.assert_close(z, model.encode(x).detach())
    vae = VAE(latent_dim=3, hidden_dim=8)
    torch.testing.assert_close(activations(vae, x), vae.encode(x)[0].detach())  # mu for a VAE


# ------------------------------------------------------------------------------------- sparsity stats
def test_sparsity_stats_hand_tensor():
    z = torch.tensor([[0.0, 0.5],
                      [0.02, 1.0]])
    stats = sparsity_stats(z, rho=0.05, threshold=0.05)
    torch.testing.assert_close(stats["mean_activation"], torch.tensor([0.01, 0.75]))  # column means
    assert stats["mean_rho_hat"] == pytest.approx(0.38)   # (0.01 + 0.75) / 2
    assert stats["frac_below"] == pytest.approx(0.5)      # 0.0 and 0.02 are < 0.05
    assert stats["frac_zero"] == pytest.approx(0.25)      # only the 0.0
    assert stats["rho"] == 0.05
    assert sparsity_stats(z)["rho"] is None


def test_sparsity_stats_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"rho must be in the open interval \(0, 1\), got 1.5"):
        sparsity_stats(torch.rand(3, 4), rho=1.5)
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0, got -0.1"):
        sparsity_stats(torch.rand(3, 4), threshold=-0.1)
    with pytest.raises(ValueError, match=r"z must have shape \(N, hidden\) with N >= 1, got \(4,\)"):
        sparsity_stats(torch.rand(4))


# -------------------------------------------------------------------------------------- negative ELBO
def test_negative_elbo_hand_value_for_constant_decoder():
    # q = prior (KL = 0) and p(x_p = 1 | z) = 0.5 for every pixel: -ELBO = 784 ln 2 = 543.427 for any x in [0, 1]
    x = torch.rand(7, 784, generator=torch.Generator().manual_seed(0))
    assert negative_elbo(_vae_ignoring_z(), x) == pytest.approx(784 * LN2, rel=1e-6)
    # q = N(0.3, 1) per dim, 2 dims: KL = 0.5 * 2 * 0.3^2 = 0.09 on top
    assert negative_elbo(_vae_ignoring_z(mu=0.3), x) == pytest.approx(784 * LN2 + 0.09, rel=1e-6)


def test_negative_elbo_matches_elbo_terms_and_is_seeded():
    torch.manual_seed(0)
    model, x = VAE(latent_dim=4, hidden_dim=32), _binary(16)
    mu, logvar = model.encode(x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
    logits = model.decode_logits(mu + torch.exp(0.5 * logvar) * eps)
    reference = (bernoulli_nll(logits, x, logits=True) + gaussian_kl(mu, logvar)).mean().item()
    value = negative_elbo(model, x, seed=5)
    assert value == pytest.approx(reference, rel=1e-5)
    assert negative_elbo(model, x, seed=5) == value
    assert negative_elbo(model, x, seed=6) != value


def test_negative_elbo_accepts_pytorch_examples_vae():
    torch.manual_seed(0)
    assert math.isfinite(negative_elbo(PyTorchExamplesVAE(), _binary(8)))


# --------------------------------------------------------------------------- importance-sampled NLL
def test_is_nll_exact_when_q_is_prior_and_decoder_ignores_z():
    # every importance weight equals p(x) = 0.5^784, so the estimate is exact for any k
    x = _binary(5)
    assert importance_sampled_nll(_vae_ignoring_z(), x, k=7) == pytest.approx(784 * LN2, rel=1e-6)


def test_is_nll_closes_the_kl_gap_when_decoder_ignores_z():
    b = torch.randn(784, generator=torch.Generator().manual_seed(3))
    model, x = _vae_ignoring_z(mu=0.3, logit_bias=b), _binary(20, seed=1)
    # exact -log p(x_i) = sum_p softplus(-b_p) where x_p = 1, softplus(b_p) where x_p = 0
    exact = (x * torch.nn.functional.softplus(-b) + (1 - x) * torch.nn.functional.softplus(b)).sum(1).mean().item()
    assert negative_elbo(model, x) == pytest.approx(exact + 0.09, abs=1e-3)       # the KL gap, by hand
    assert importance_sampled_nll(model, x, k=500, batch_size=8) == pytest.approx(exact, abs=0.02)


def test_is_nll_is_below_negative_elbo_and_decreases_with_k():
    torch.manual_seed(0)
    model, x = VAE(latent_dim=4, hidden_dim=32), _binary(32)
    with torch.no_grad():
        model.to_logvar.bias.fill_(-1.0)
    neg_elbo = sum(negative_elbo(model, x, seed=s) for s in range(5)) / 5
    nll = [importance_sampled_nll(model, x, k=k) for k in (1, 10, 100)]
    assert nll[2] < nll[1] < neg_elbo
    assert neg_elbo - nll[2] > 0.1


def test_is_nll_with_one_sample_estimates_negative_elbo():
    torch.manual_seed(0)
    model = VAE(latent_dim=4, hidden_dim=32)
    x = _binary(8).repeat(250, 1)  # 2000 rows: both are means of unbiased estimates of the same -ELBO
    # (k = 1: log w = log p(x|z) - [log q(z|x) - log p(z)], a one-sample KL instead of the closed form).
    # Over 10 seeds each estimate here has a standard deviation of about 0.1 nats; 0.5 is ~3.5 sd of the gap.
    assert importance_sampled_nll(model, x, k=1, batch_size=1000, seed=1) == pytest.approx(
        negative_elbo(model, x, seed=2), abs=0.5)


def test_is_nll_is_seeded_and_accepts_pytorch_examples_vae():
    torch.manual_seed(0)
    model, x = PyTorchExamplesVAE(), _binary(4)
    a = importance_sampled_nll(model, x, k=5, seed=3)
    assert math.isfinite(a) and a == importance_sampled_nll(model, x, k=5, seed=3)


def test_vae_metrics_reject_bad_arguments():
    vae, x = _vae_ignoring_z(), _binary(3)
    with pytest.raises(ValueError, match="k must be an int >= 1, got 0"):
        importance_sampled_nll(vae, x, k=0)
    with pytest.raises(ValueError, match=r"x must have all values in \[0, 1\], got values in \[0, 2\]"):
        importance_sampled_nll(vae, x * 2)
    with pytest.raises(ValueError, match=r"x must have all values in \[0, 1\], got values in \[-1, 0\]"):
        negative_elbo(vae, x - 1)
    with pytest.raises(TypeError, match=r"negative_elbo needs a VAE-like model whose encode\(x\) returns "
                                        r"\(mu, logvar\), got FCAutoencoder"):
        negative_elbo(FCAutoencoder(), x)
    with pytest.raises(TypeError, match=r"^seed must be an int in \[0, 2\*\*64 - 1\], got float$"):
        negative_elbo(vae, x, seed=1.5)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got function"):
        negative_elbo(lambda t: t, x)
    with pytest.raises(ValueError, match=r"^seed must be an int in \[0, 2\*\*64 - 1\], got 18446744073709551616$"):
        importance_sampled_nll(vae, x, seed=2**64)
    with pytest.raises(TypeError, match=r"^model VAE has torch.float64 parameters but x has dtype torch.float32; "
                                        r"convert the model with model.float\(\)$"):
        negative_elbo(_vae_ignoring_z().double(), x)


# ------------------------------------------------------------------------------------ evaluating(model)
def test_evaluating_is_eval_mode_without_grad_and_restores_the_mode():
    model = SparseAutoencoder(hidden_dim=4).train()
    with evaluating(model):
        assert not model.training and not torch.is_grad_enabled()
    assert model.training and torch.is_grad_enabled()
    with pytest.raises(RuntimeError, match="^inside$"), evaluating(model):
        raise RuntimeError("inside")
    assert model.training and torch.is_grad_enabled()  # restored after an error too
    model.eval()
    with evaluating(model):
        pass
    assert not model.training
    with pytest.raises(TypeError, match="^model must be a torch.nn.Module, got function$"), evaluating(lambda t: t):
        pass


# ------------------------------------------------------------------ importance sampling in chunks of k
def _is_nll_unchunked(model, x, eps_per_batch, batch_size):
    """The estimate with all k samples of a batch at once (the formula before chunking), from given eps."""
    total = 0.0
    for i, eps in zip(range(0, x.shape[0], batch_size), eps_per_batch):
        xb = x[i:i + batch_size]
        mu, logvar = model.encode(xb)
        z = mu + torch.exp(0.5 * logvar) * eps                                            # (k, B, d)
        logits = model.decode_logits(z.reshape(-1, z.shape[-1])).reshape(*z.shape[:2], -1)
        log_px = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits, xb.expand_as(logits), reduction="none").sum(-1)
        log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
        log_qz = -0.5 * (eps.pow(2) + math.log(2 * math.pi) + logvar).sum(-1)
        total += -(torch.logsumexp(log_px + log_pz - log_qz, 0) - math.log(eps.shape[0])).sum().item()
    return total / x.shape[0]


def test_is_nll_in_chunks_equals_all_samples_at_once(monkeypatch):
    torch.manual_seed(0)
    model, x, k, batch_size = VAE(latent_dim=3, hidden_dim=16), _binary(7), 10, 4
    g = torch.Generator().manual_seed(1)
    eps = [torch.randn(k, n, 3, generator=g) for n in (4, 3)]  # the samples of batch 1 and batch 2
    chunks_of, chunks = [[], []], []

    def serve(shape, generator, like):  # hands out each batch's eps in order, chunk by chunk
        batch = 0 if sum(chunks_of[0]) < k else 1
        start = sum(chunks_of[batch])
        chunks_of[batch].append(shape[0])
        chunks.append(tuple(shape))
        return eps[batch][start:start + shape[0]]

    with torch.no_grad():
        expected = _is_nll_unchunked(model, x, eps, batch_size)
    monkeypatch.setattr(metrics, "_standard_normal", serve)
    for budget, sizes in ((10**9, [10]), (3 * 4 * 784, [3, 3, 3, 1])):
        monkeypatch.setattr(metrics, "IS_CHUNK_ELEMENTS", budget)
        chunks_of, chunks = [[], []], []
        value = importance_sampled_nll(model, x, k=k, batch_size=batch_size)
        assert value == pytest.approx(expected, rel=1e-6)
        assert chunks_of[0] == sizes and sum(chunks_of[1]) == k
        assert chunks[0] == (sizes[0], 4, 3)


def test_is_nll_with_huge_k_takes_bounded_chunks(monkeypatch):
    model, x, shapes = _vae_ignoring_z(), _binary(4), []
    real = metrics._standard_normal

    class Enough(Exception):
        pass

    def record(shape, generator, like):
        shapes.append(tuple(shape))
        if len(shapes) == 3:
            raise Enough  # three chunks show the pattern; all 10**7 samples would take minutes
        return real(shape, generator, like)

    monkeypatch.setattr(metrics, "_standard_normal", record)
    with pytest.raises(Enough):
        importance_sampled_nll(model, x, k=10**7)  # all at once: 10**7 x 4 x 784 floats = 125 GB
    chunk = metrics.IS_CHUNK_ELEMENTS // (4 * 784)
    assert shapes == [(chunk, 4, 2)] * 3 and chunk * 4 * 784 * 4 <= 16 * 2**20  # <= 16 MB per (k, B, 784) tensor


def test_a_model_with_nan_weights_is_refused_not_measured_as_nan():
    from funml_lib.models import FCAutoencoder
    from funml_lib.probes import linear_map

    model = FCAutoencoder(latent_dim=2, hidden_dims=(8,))
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("nan")
    for measure in (lambda: reconstruction_mse(model, torch.rand(3, 784)), lambda: linear_map(model)):
        with pytest.raises(ValueError, match=r"^model has NaN in encoder\.0\.weight; every weight must be finite"):
            measure()
