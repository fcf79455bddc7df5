"""Probes on models and data built by hand: the identity, the zero map, a 2-d toy covariance."""
import math

import pytest
import torch
from torch import nn

from funml_lib.models import FCAutoencoder, SparseAutoencoder
from funml_lib.probes import identity_test, linear_dae_optimum, linear_map, linear_probe, probe_images


def _digits(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 784, generator=torch.Generator().manual_seed(seed))


class _Zero(nn.Module):
    """x_hat = 0 for every input: affine with M = 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


# ------------------------------------------------------------------------------------- probe_images
def test_probe_images_kinds_shapes_and_range():
    probes = probe_images(_digits(), seed=3)
    assert list(probes) == ["shifted digits", "shapes", "noise"]
    assert [tuple(p.shape) for p in probes.values()] == [(4, 784), (2, 784), (4, 784)]
    for p in probes.values():
        assert float(p.min()) >= 0.0 and float(p.max()) <= 1.0


def test_probe_images_by_hand():
    x = _digits()
    probes = probe_images(x, seed=0)
    shifted = probes["shifted digits"].view(4, 28, 28)
    assert torch.equal(shifted[:, :, 8:], x[:4].view(4, 28, 28)[:, :, :-8])
    assert float(shifted[:, :, :8].abs().sum()) == 0.0           # nothing wraps around
    box = probes["shapes"][0].view(28, 28)
    assert int(box.sum()) == 15 * 15 - 11 * 11                    # a square outline two pixels thick
    noise = probes["noise"].view(4, 28, 28)
    assert float(noise[:, :4].abs().sum()) == 0.0                 # only the central 19 x 19 square
    assert float(noise[:, 5:24, 5:24].min()) > 0.0


def test_probe_images_deterministic_per_seed():
    a, b, c = (probe_images(_digits(), seed=s)["noise"] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_probe_images_needs_enough_digits():
    with pytest.raises(ValueError, match="at least n = 4 digits"):
        probe_images(_digits(3))


# --------------------------------------------------------------------------------------- linear_map
def test_linear_map_of_a_linear_autoencoder_is_w_dec_w_enc():
    model = FCAutoencoder(latent_dim=1000, hidden_dims=(), nonlinear=False)
    expected = model.decoder[0].weight @ model.W1
    assert torch.allclose(linear_map(model), expected.detach(), atol=1e-5)


def test_linear_map_identity_and_none_for_nonlinear():
    assert torch.equal(linear_map(nn.Identity()), torch.eye(784))
    assert linear_map(SparseAutoencoder(hidden_dim=16)) is None
    assert linear_map(FCAutoencoder(latent_dim=10, nonlinear=True)) is None


# ------------------------------------------------------------------------------------ identity_test
def test_identity_test_of_a_copier_is_perfect():
    x = _digits()
    row = identity_test(nn.Identity(), x, probe_images(x))
    assert row == {"test digits": 0.0, "shifted digits": 0.0, "shapes": 0.0, "noise": 0.0,
                   "distance to I": 0.0, "singular values near 1": 784}


def test_identity_test_of_the_zero_map():
    x = _digits()
    probes = probe_images(x)
    inked = torch.zeros(784, dtype=torch.bool)
    inked[:100] = True
    row = identity_test(_Zero(), x, probes, inked=inked)
    assert row["test digits"] == pytest.approx(float((x**2).mean()), rel=1e-6)
    assert row["shapes"] == pytest.approx(float(probes["shapes"].mean()), rel=1e-6)  # 0/1 pixels
    assert row["distance to I"] == pytest.approx(1.0)     # ||0 - I|| / ||I||
    assert row["singular values near 1"] == 0


def test_identity_test_nonlinear_has_no_matrix_measures():
    x = _digits()
    row = identity_test(SparseAutoencoder(hidden_dim=8), x, probe_images(x))
    assert row["distance to I"] is None and row["singular values near 1"] is None
    assert row["noise"] > 0.0


def test_identity_test_rejects_a_bad_mask():
    x = _digits()
    with pytest.raises(ValueError, match=r"inked must be a \(784,\) bool tensor"):
        identity_test(nn.Identity(), x, probe_images(x), inked=torch.ones(784))


# ------------------------------------------------------------------------------- linear_dae_optimum
def _toy(rotate: bool = False, shift=(0.0, 0.0)) -> torch.Tensor:
    """Four 2-d points with mean `shift` and covariance diag(1/2, 1/8) (rotated by 45 degrees)."""
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5], [0.0, -0.5]])
    if rotate:
        r = 1 / math.sqrt(2)
        x = x @ torch.tensor([[r, r], [-r, r]])
    return x + torch.tensor(shift)


def test_linear_dae_optimum_on_a_diagonal_toy_covariance():
    # lambda / (lambda + sigma^2) with sigma^2 = 1/4: (1/2) / (3/4) = 2/3 and (1/8) / (3/8) = 1/3
    M, c = linear_dae_optimum(_toy(shift=(2.0, 3.0)), sigma=0.5)
    assert torch.allclose(M, torch.tensor([[2 / 3, 0.0], [0.0, 1 / 3]]), atol=1e-6)
    assert torch.allclose(c, torch.tensor([(1 / 3) * 2.0, (2 / 3) * 3.0]), atol=1e-6)  # (I - M) mu


def test_linear_dae_optimum_rotates_with_the_data():
    # R diag(2/3, 1/3) R^T for a 45-degree rotation R: 1/2 on the diagonal, 1/6 off it
    M, c = linear_dae_optimum(_toy(rotate=True), sigma=0.5)
    assert torch.allclose(M, torch.tensor([[0.5, 1 / 6], [1 / 6, 0.5]]), atol=1e-6)
    assert torch.allclose(c, torch.zeros(2), atol=1e-6)


def test_linear_dae_optimum_without_noise_is_the_identity_on_the_span():
    M, _ = linear_dae_optimum(_toy(), sigma=0.0)
    assert torch.allclose(M, torch.eye(2), atol=1e-6)
    flat = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])              # all variance along the first axis
    M, _ = linear_dae_optimum(flat, sigma=0.0)
    assert torch.allclose(M, torch.tensor([[1.0, 0.0], [0.0, 0.0]]), atol=1e-6)


def test_a_trained_linear_dae_reaches_the_closed_form():
    """Adam on E||x - G(E(x + sigma eps))||^2 with fresh noise every step lands on M = S (S + s^2 I)^-1."""
    x, sigma = _toy(rotate=True, shift=(0.5, -1.0)), 0.5
    M_star, c_star = linear_dae_optimum(x, sigma)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 2))     # a linear AE with a 3-d code
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=1500)
    clean = x.repeat(128, 1)                                      # 512 rows, fresh noise each step
    for _ in range(1500):
        noisy = clean + sigma * torch.randn(clean.shape, generator=g)
        loss = ((clean - model(noisy)) ** 2).sum(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        c = model(torch.zeros(1, 2))[0]
        M = (model(torch.eye(2)) - c).T
    assert torch.allclose(M, M_star, atol=0.03)
    assert torch.allclose(c, c_star, atol=0.03)


# ------------------------------------------------------------------------------------- linear_probe
def test_linear_probe_separable_features_give_full_accuracy():
    y = torch.arange(40) % 4
    z = torch.nn.functional.one_hot(y, 4).float() + 0.01 * _digits(40)[:, :4]
    assert linear_probe(z, y, z, y) == 1.0


def test_linear_probe_without_information_predicts_the_majority_class():
    z = torch.ones(8, 5)                                          # constant features carry nothing
    y_train = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])
    y_test = torch.tensor([0, 0, 1, 2])
    assert linear_probe(z, y_train, z[:4], y_test) == pytest.approx(0.5)


def test_linear_probe_checks_its_inputs():
    z, y = _digits(10)[:, :3], torch.arange(10) % 2
    with pytest.raises(ValueError, match="y_train must be an integer tensor of shape"):
        linear_probe(z, y.float(), z, y)
    with pytest.raises(ValueError, match="z_test must have the 3 features of z_train"):
        linear_probe(z, y, z[:, :2], y)


def test_linear_probe_restores_the_thread_count():
    threads = torch.get_num_threads()
    z, y = _digits(10)[:, :3], torch.arange(10) % 2
    linear_probe(z, y, z, y, steps=2)
    assert torch.get_num_threads() == threads


def test_linear_probe_needs_two_classes_and_finite_features():
    z = torch.randn(6, 3)
    with pytest.raises(ValueError) as err:
        linear_probe(z, torch.full((6,), 3), z, torch.full((6,), 3))
    assert str(err.value) == ("y_train must hold at least two classes for a classifier to be tested, got "
                              "only class 3 in all 6 rows")
    bad = z.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="z_test contains NaN; every entry must be finite"):
        linear_probe(z, torch.arange(6) % 2, bad, torch.arange(6) % 2)
    with pytest.raises(ValueError, match=r"y_test must be an integer tensor of shape \(6,\)"):
        linear_probe(z, torch.arange(6) % 2, z, torch.arange(5) % 2)


def test_linear_dae_optimum_refuses_nan_data():
    x = torch.rand(5, 4)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="^x contains NaN; every entry must be finite$"):
        linear_dae_optimum(x, 0.5)


def test_linear_probe_takes_float64_codes_and_names_a_dtype_mix():
    # float64 codes failed with torch's "expected m1 and m2 to have the same dtype" from inside the fit
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    z = torch.randn(40, 3, generator=g, dtype=torch.float64) + y[:, None].double() * 4
    assert linear_probe(z, y, z, y) == 1.0
    with pytest.raises(TypeError, match="z_test must have the dtype of z_train"):
        linear_probe(z, y, z.float(), y)
