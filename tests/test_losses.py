"""Loss terms against hand-computed values and closed forms; loss functions against their pieces."""
import math

import pytest
import torch

from funml_lib.losses import (autoencoder_loss, bernoulli_nll, gaussian_kl, kl_sparsity,
                              l1_sparsity, sparse_loss, squared_error, vae_loss)
from funml_lib.models import VAE, FCAutoencoder, PyTorchExamplesVAE, SparseAutoencoder


# ------------------------------------------------------------------------------------------ squared error
def test_squared_error_hand_value():
    x = torch.zeros(2, 4)
    x_hat = torch.tensor([[1.0, 0, 0, 0], [0, 0, 2.0, 0]])
    # (1^2 + 2^2) / 8 pixels = 0.625
    assert squared_error(x_hat, x).item() == pytest.approx(0.625)


def test_squared_error_rejects_shape_mismatch_and_nan():
    with pytest.raises(ValueError, match=r"x_hat and x must have the same shape, got \(2, 4\) and \(2, 3\)"):
        squared_error(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="x_hat contains NaN"):
        squared_error(torch.full((2, 4), float("nan")), torch.zeros(2, 4))


# -------------------------------------------------------------------------------------------- L1 sparsity
def test_l1_sparsity_hand_value():
    z = torch.tensor([[1.0, -2.0, 0.0], [0.5, 0.0, 0.5]])
    # sample sums |z|: 3 and 1; their mean: 2
    assert l1_sparsity(z).item() == pytest.approx(2.0)


def test_l1_sparsity_rejects_1d():
    with pytest.raises(ValueError, match=r"^z must have shape \(N, D\), got \(3,\)$"):
        l1_sparsity(torch.ones(3))


# -------------------------------------------------------------------------------------------- KL sparsity
def test_kl_sparsity_zero_when_rho_hat_equals_rho():
    assert kl_sparsity(0.05, 0.05).item() == 0.0
    assert torch.equal(kl_sparsity(0.2, torch.full((5,), 0.2)), torch.zeros(5))


def test_kl_sparsity_hand_value():
    # KL(0.05 || 0.5) = 0.05 ln(0.05/0.5) + 0.95 ln(0.95/0.5) = 0.05 ln 0.1 + 0.95 ln 1.9
    #                 = 0.05 * (-2.302585) + 0.95 * 0.641854 = -0.115129 + 0.609761 = 0.494632
    assert kl_sparsity(0.05, 0.5).item() == pytest.approx(0.494632, abs=1e-6)
    assert kl_sparsity(0.05, 0.5).item() == pytest.approx(0.05 * math.log(0.1) + 0.95 * math.log(1.9), abs=1e-6)


def test_kl_sparsity_shape_follows_rho_hat():
    assert kl_sparsity(0.05, torch.rand(7, 3)).shape == (7, 3)


def test_kl_sparsity_finite_at_0_and_1():
    kl = kl_sparsity(0.05, torch.tensor([0.0, 1.0]))
    assert torch.isfinite(kl).all()
    # rho_hat clamped to 1e-6: 0.05 ln(0.05 / 1e-6) + 0.95 ln(0.95 / (1 - 1e-6)) = 0.5410 - 0.0487 = 0.4923
    assert kl[0].item() == pytest.approx(0.05 * math.log(0.05 / 1e-6) + 0.95 * math.log(0.95), abs=1e-3)


def test_kl_sparsity_monotone_on_both_sides_of_rho():
    rho = 0.05
    left = kl_sparsity(rho, torch.linspace(0.001, rho, 50, dtype=torch.float64))
    right = kl_sparsity(rho, torch.linspace(rho, 0.999, 200, dtype=torch.float64))
    assert (left.diff() < 0).all()   # decreasing towards rho
    assert (right.diff() > 0).all()  # increasing away from rho
    assert left[-1].item() == 0.0 and right[0].item() == 0.0


def test_kl_sparsity_gradient_finite_near_0_and_1():
    rho_hat = torch.tensor([0.0, 1e-7, 1e-4, 1 - 1e-4, 1.0], requires_grad=True)
    kl_sparsity(0.05, rho_hat).sum().backward()
    assert torch.isfinite(rho_hat.grad).all()
    # d/d rho_hat = -rho/rho_hat + (1 - rho)/(1 - rho_hat) = -500 + 0.95/0.9999 at rho_hat = 1e-4
    assert rho_hat.grad[2].item() == pytest.approx(-0.05 / 1e-4 + 0.95 / (1 - 1e-4), rel=1e-3)


def test_kl_sparsity_rejects_bad_rho_and_rho_hat():
    with pytest.raises(ValueError, match=r"rho must be in the open interval \(0, 1\), got 1.5"):
        kl_sparsity(1.5, 0.5)
    with pytest.raises(ValueError, match=r"rho must be in the open interval \(0, 1\), got 0"):
        kl_sparsity(0.0, 0.5)
    with pytest.raises(ValueError, match=r"rho_hat must have all values in \[0, 1\], got values in \[-0.1, 0.5\]"):
        kl_sparsity(0.05, torch.tensor([-0.1, 0.5]))
    with pytest.raises(ValueError, match=r"rho_hat must be in \[0, 1\], got 2"):
        kl_sparsity(0.05, 2.0)


# ------------------------------------------------------------------------------------------- Gaussian KL
def test_gaussian_kl_zero_for_standard_normal():
    assert torch.equal(gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3))


def test_gaussian_kl_hand_values():
    # 1-d: 0.5 (mu^2 + sigma^2 - 1 - log sigma^2); mu=1, logvar=0 -> 0.5 (1 + 1 - 1 - 0) = 0.5
    assert gaussian_kl(torch.tensor([[1.0]]), torch.tensor([[0.0]])).item() == pytest.approx(0.5)
    # mu=0, logvar=ln 2: 0.5 (0 + 2 - 1 - ln 2) = 0.5 - 0.5 ln 2 = 0.153426; summed over 2 dims -> 0.306853
    logvar = torch.full((1, 2), math.log(2.0))
    assert gaussian_kl(torch.zeros(1, 2), logvar).item() == pytest.approx(1.0 - math.log(2.0), abs=1e-6)


def test_gaussian_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(1, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(1, 3, generator=g, dtype=torch.float64) * 0.5
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.manual_seed(0)
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean().item()  # E_q[log q - log p]
    exact = torch.distributions.kl_divergence(q, p).sum().item()
    ours = gaussian_kl(mu, logvar).item()
    assert ours == pytest.approx(exact, abs=1e-10)
    assert ours == pytest.approx(mc, abs=0.02)


def test_gaussian_kl_rejects_mismatch():
    with pytest.raises(ValueError, match=r"mu and logvar must have the same shape, got \(2, 3\) and \(2, 4\)"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))


def test_gaussian_kl_check_values_false_skips_only_the_value_scan():
    nan = torch.full((2, 3), float("nan"))
    with pytest.raises(ValueError, match="^mu contains NaN; every entry must be finite$"):
        gaussian_kl(nan, torch.zeros(2, 3))
    assert torch.isnan(gaussian_kl(nan, torch.zeros(2, 3), check_values=False)).all()  # for loops that checked once
    with pytest.raises(ValueError, match=r"^logvar must have shape \(N, D\), got \(3,\)$"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(3), check_values=False)  # shapes: always
    with pytest.raises(TypeError, match="^check_values must be a bool, got int$"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3), check_values=0)


def test_terms_take_float_rows_of_any_width():
    with pytest.raises(TypeError, match="^z must be a floating-point tensor, got dtype torch.int64$"):
        l1_sparsity(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^z is empty: it must hold at least one sample \(N >= 1\)$"):
        l1_sparsity(torch.ones(0, 3))
    assert l1_sparsity(torch.ones(2, 5)).item() == 5.0


# ---------------------------------------------------------------------------------------- Bernoulli NLL
def test_bernoulli_nll_hand_value():
    # -log 0.5 = ln 2 nats per pixel, summed over 784 pixels
    nll = bernoulli_nll(torch.full((2, 784), 0.5), torch.ones(2, 784))
    assert nll.shape == (2,)
    assert nll[0].item() == pytest.approx(784 * math.log(2.0), rel=1e-6)
    # one pixel: x=0, x_hat=0.2 -> -ln 0.8 = 0.223144
    assert bernoulli_nll(torch.tensor([[0.2]]), torch.tensor([[0.0]])).item() == pytest.approx(0.223144, abs=1e-6)


def test_bernoulli_nll_logits_equals_probabilities():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 784, generator=g) * 3
    x = torch.rand(4, 784, generator=g)
    by_logits = bernoulli_nll(logits, x, logits=True)
    by_probs = bernoulli_nll(torch.sigmoid(logits), x)
    torch.testing.assert_close(by_logits, by_probs, rtol=1e-4, atol=1e-3)


def test_bernoulli_nll_rejects_x_outside_unit_interval():
    with pytest.raises(ValueError, match=r"x must have all values in \[0, 1\], got values in \[0, 2\]"):
        bernoulli_nll(torch.full((1, 3), 0.5), torch.tensor([[0.0, 1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"x_hat must have all values in \[0, 1\], got values in \[0.5, 3\]"):
        bernoulli_nll(torch.tensor([[0.5, 3.0]]), torch.tensor([[0.0, 1.0]]))
    with pytest.raises(TypeError, match="logits must be a bool, got str"):
        bernoulli_nll(torch.full((1, 3), 0.5), torch.ones(1, 3), logits="yes")


# ------------------------------------------------------------------------------------- loss functions
def test_autoencoder_loss_is_squared_error():
    torch.manual_seed(0)
    model, x = FCAutoencoder(latent_dim=4, hidden_dims=(16,)), torch.rand(6, 784)
    target = torch.rand(6, 784)
    out = autoencoder_loss(model, x, target)
    assert set(out) == {"loss"}
    torch.testing.assert_close(out["loss"], squared_error(model(x), target))
    torch.testing.assert_close(autoencoder_loss(model, x, None)["loss"], squared_error(model(x), x))


def test_autoencoder_loss_rejects_vae():
    with pytest.raises(TypeError, match="for a VAE use vae_loss"):
        autoencoder_loss(VAE(latent_dim=2, hidden_dim=8), torch.rand(2, 784), None)


@pytest.mark.parametrize("penalty", ["l1", "kl"])
def test_sparse_loss_keys_and_pieces(penalty):
    torch.manual_seed(0)
    model, x = SparseAutoencoder(hidden_dim=32), torch.rand(8, 784)
    out = sparse_loss(penalty, lam=0.003, rho=0.05)(model, x, None)
    assert set(out) == {"loss", "reconstruction", "sparsity"}
    z = model.encode(x)
    omega = l1_sparsity(z) if penalty == "l1" else kl_sparsity(0.05, z.mean(0)).sum()
    torch.testing.assert_close(out["reconstruction"], squared_error(model(x), x))
    torch.testing.assert_close(out["sparsity"], omega.detach())
    torch.testing.assert_close(out["loss"].detach(), out["reconstruction"] + 0.003 * out["sparsity"])
    assert out["loss"].requires_grad and not out["sparsity"].requires_grad
    assert all(v.dim() == 0 for v in out.values())


def test_sparse_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match="lam must be a finite number >= 0, got -1"):
        sparse_loss("l1", lam=-1)
    with pytest.raises(ValueError, match=r"penalty must be one of 'l1', 'kl', got 'l2'"):
        sparse_loss("l2", lam=0.001)
    with pytest.raises(ValueError, match=r"rho must be in the open interval \(0, 1\), got 1.5"):
        sparse_loss("kl", lam=0.001, rho=1.5)


@pytest.mark.parametrize("model_cls", [VAE, PyTorchExamplesVAE])
def test_vae_loss_keys_and_pieces(model_cls):
    torch.manual_seed(0)
    model, x = model_cls(), (torch.rand(8, 784) > 0.5).float()
    torch.manual_seed(1)
    out = vae_loss(beta=2.0)(model, x, None)
    assert set(out) == {"loss", "reconstruction", "kl"}
    torch.manual_seed(1)  # the same eps again, to rebuild the terms from the public pieces
    mu, logvar = model.encode(x)
    logits = model.decode_logits(model.reparameterize(mu, logvar))
    torch.testing.assert_close(out["reconstruction"], bernoulli_nll(logits, x, logits=True).mean().detach())
    torch.testing.assert_close(out["kl"], gaussian_kl(mu, logvar).mean().detach())
    torch.testing.assert_close(out["loss"].detach(), out["reconstruction"] + 2.0 * out["kl"])
    assert out["loss"].requires_grad and not out["kl"].requires_grad
    assert all(v.dim() == 0 for v in out.values())


def test_only_the_bernoulli_loss_declares_a_data_range():
    # fit and evaluate read data_range and check x and target against it once per call
    assert vae_loss().data_range == (0.0, 1.0) and vae_loss(beta=4.0).data_range == (0.0, 1.0)
    assert not hasattr(autoencoder_loss, "data_range") and not hasattr(sparse_loss("kl", 1e-3), "data_range")


def test_vae_loss_rejects_bad_beta_and_model():
    with pytest.raises(ValueError, match="beta must be a finite number >= 0, got -0.5"):
        vae_loss(beta=-0.5)
    with pytest.raises(TypeError, match="vae_loss needs a model with encode -> .* got FCAutoencoder"):
        vae_loss()(FCAutoencoder(), torch.rand(2, 784), None)
