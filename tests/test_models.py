"""Models: shapes, config, determinism, linearity of the linear AE, the reparameterisation, bad input."""
import pytest
import torch

from funml_lib.models import VAE, ConvAutoencoder, FCAutoencoder, PyTorchExamplesVAE, SparseAutoencoder

N = 5


def _x(n: int = N, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 784, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("model, latent", [
    (FCAutoencoder(), 10),
    (FCAutoencoder(latent_dim=2, hidden_dims=(64, 32)), 2),
    (FCAutoencoder(latent_dim=128, hidden_dims=()), 128),
    (FCAutoencoder(nonlinear=False), 10),
    (ConvAutoencoder(), 16),
    (SparseAutoencoder(), 128),
])
def test_autoencoder_shapes(model, latent):
    x = _x()
    z = model.encode(x)
    assert z.shape == (N, latent)
    assert model.decode(z).shape == (N, 784)
    assert model(x).shape == (N, 784)


@pytest.mark.parametrize("model", [FCAutoencoder(), ConvAutoencoder(), SparseAutoencoder()])
def test_sigmoid_outputs_lie_in_unit_interval(model):
    x_hat = model(_x())
    assert ((x_hat > 0) & (x_hat < 1)).all()


@pytest.mark.parametrize("model_cls, latent", [(VAE, 20), (PyTorchExamplesVAE, 20)])
def test_vae_shapes(model_cls, latent):
    model, x = model_cls(), _x()
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (N, latent)
    z = model.reparameterize(mu, logvar)
    assert z.shape == (N, latent)
    assert model.decode_logits(z).shape == (N, 784)
    torch.testing.assert_close(model.decode(z), torch.sigmoid(model.decode_logits(z)))
    x_hat, mu2, logvar2 = model(x)
    assert x_hat.shape == (N, 784) and mu2.shape == (N, latent) and logvar2.shape == (N, latent)


def test_vae_custom_sizes():
    model = VAE(latent_dim=2, hidden_dim=32)
    mu, _ = model.encode(_x())
    assert mu.shape == (N, 2)
    assert model.config == {"latent_dim": 2, "hidden_dim": 32}


def test_pytorch_examples_vae_layers_match_the_example():
    model = PyTorchExamplesVAE()
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters() if name.endswith("weight")}
    assert shapes == {"fc1.weight": (400, 784), "fc21.weight": (20, 400), "fc22.weight": (20, 400),
                      "fc3.weight": (400, 20), "fc4.weight": (784, 400)}
    assert model.config == {}


def test_sparse_autoencoder_W1_is_encoder_weight():
    model = SparseAutoencoder()
    assert model.W1.shape == (128, 784)
    assert model.W1 is model.encoder[0].weight
    z = model.encode(_x())
    assert ((z > 0) & (z < 1)).all()  # sigmoid code, needed by the KL penalty
    assert SparseAutoencoder(hidden_dim=64).W1.shape == (64, 784)


def test_config_rebuilds_the_same_architecture():
    for model in [FCAutoencoder(latent_dim=3, hidden_dims=(32,), nonlinear=False), ConvAutoencoder(latent_dim=4),
                  SparseAutoencoder(hidden_dim=16), VAE(latent_dim=2, hidden_dim=8)]:
        clone = type(model)(**model.config)
        clone.load_state_dict(model.state_dict())  # raises if any shape differs


def test_determinism_under_manual_seed():
    x = _x()
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = VAE(latent_dim=3, hidden_dim=16)
        outs.append(model(x)[0])  # seeded parameters and seeded eps
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    torch.manual_seed(0)
    a = FCAutoencoder()(x)
    torch.manual_seed(0)
    b = FCAutoencoder()(x)
    assert torch.equal(a, b)


def test_reparameterize_with_tiny_variance_gives_mu():
    model = VAE(latent_dim=3, hidden_dim=8)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    z = model.reparameterize(mu, torch.full((1, 3), -200.0))  # sigma = exp(-100) ~ 0
    torch.testing.assert_close(z, mu, rtol=0, atol=1e-30)


def test_reparameterize_has_the_right_moments():
    torch.manual_seed(0)
    mu, logvar = torch.full((20_000, 1), 1.5), torch.full((20_000, 1), 2 * torch.log(torch.tensor(3.0)).item())
    z = VAE(latent_dim=1, hidden_dim=4).reparameterize(mu, logvar)
    assert z.mean().item() == pytest.approx(1.5, abs=0.1)   # 4 standard errors: 3 / sqrt(20000) = 0.02
    assert z.std().item() == pytest.approx(3.0, rel=0.03)


def test_linear_autoencoder_is_exactly_linear():
    torch.manual_seed(0)
    model = FCAutoencoder(latent_dim=10, hidden_dims=(64,), nonlinear=False).double()
    assert not any(isinstance(m, (torch.nn.ReLU, torch.nn.Sigmoid)) for m in model.modules())
    a, b = _x(3, 1).double(), _x(3, 2).double()
    zero = torch.zeros_like(a)
    torch.testing.assert_close(model(a + b), model(a) + model(b) - model(zero), rtol=0, atol=1e-12)


def test_nonlinear_autoencoder_is_not_linear():
    torch.manual_seed(0)
    model = FCAutoencoder(latent_dim=10, hidden_dims=(64,)).double()
    a, b = _x(3, 1).double(), _x(3, 2).double()
    gap = (model(a + b) - (model(a) + model(b) - model(torch.zeros_like(a)))).abs().max()
    assert gap > 1e-3


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="latent_dim must be an int >= 1, got 0"):
        FCAutoencoder(latent_dim=0)
    with pytest.raises(TypeError, match="latent_dim must be an int >= 1, got float"):
        VAE(latent_dim=2.5)
    with pytest.raises(ValueError, match=r"hidden_dims must be a tuple of ints >= 1 \(may be empty\), got \(256, 0\)"):
        FCAutoencoder(hidden_dims=(256, 0))
    with pytest.raises(TypeError, match="nonlinear must be a bool, got int"):
        FCAutoencoder(nonlinear=1)
    with pytest.raises(ValueError, match="hidden_dim must be an int >= 1, got -3"):
        SparseAutoencoder(hidden_dim=-3)
    with pytest.raises(ValueError, match="latent_dim must be an int >= 1, got 0"):
        ConvAutoencoder(latent_dim=0)
    with pytest.raises(ValueError, match="hidden_dim must be an int >= 1, got 0"):
        VAE(hidden_dim=0)


@pytest.mark.parametrize("model", [FCAutoencoder(), ConvAutoencoder(), SparseAutoencoder(), VAE(),
                                   PyTorchExamplesVAE()])
def test_forward_rejects_bad_input(model):
    with pytest.raises(ValueError, match=r"x must have shape \(N, 784\), got \(2, 1, 28, 28\)"):
        model(torch.rand(2, 1, 28, 28))
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got dtype torch.uint8"):
        model(torch.zeros(2, 784, dtype=torch.uint8))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        model(torch.rand(2, 784).numpy())
    with pytest.raises(ValueError, match=r"x is empty: it must hold at least one sample \(N >= 1\)"):
        model(torch.rand(0, 784))


def test_decode_rejects_wrong_latent_size():
    with pytest.raises(ValueError, match=r"z must have shape \(N, 20\), got \(4, 3\)"):
        VAE().decode(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"z must have shape \(N, 10\), got \(4, 3\)"):
        FCAutoencoder().decode(torch.zeros(4, 3))
