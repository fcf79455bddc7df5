"""Tests for funml_lib.train: seeding, device choice, fit, evaluate, checkpoints."""
import random

import pytest
import torch
from torch import nn

from funml_lib.losses import autoencoder_loss, sparse_loss, vae_loss
from funml_lib.models import VAE, FCAutoencoder, SparseAutoencoder
from funml_lib._validate import env_flag
from funml_lib.train import History, evaluate, fit, pick_device, seed_everything, train_epoch


def digits(n=64, seed=0):
    """Structured fake digits in [0, 1]: mixtures of 4 fixed patterns, learnable by a small AE."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(4, 784, generator=g)
    weights = torch.softmax(3 * torch.randn(n, 4, generator=g), dim=1)
    return weights @ patterns


class Scale(nn.Module):
    """x_hat = w * x: one parameter, so loss values are easy to follow by hand."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        return self.w * x


def mean_terms(model, x, target):
    return {"loss": (model(x) - target).pow(2).mean(), "batch_mean": x.mean().detach(),
            "two": torch.tensor(2.0)}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny problems run fastest on one thread, and far faster on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------- devices
def test_pick_device_is_cpu_without_gpu():
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("a GPU is present")
    assert pick_device() == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^prefer='cuda' but no CUDA GPU is available here; "
                                         r"use prefer=None or 'cpu'$"):
        pick_device("cuda")


def test_pick_device_prefer():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("tpu", "gpu"):
        with pytest.raises(ValueError, match=rf"^prefer must be one of 'cpu', 'cuda', 'mps' \(or an indexed one "
                                             rf"like 'cuda:1'\), got '{bad}'$"):
            pick_device(bad)
    with pytest.raises(TypeError, match="prefer must be None, a string or a torch.device, got int"):
        pick_device(0)


def test_seed_everything_repeats_random_streams():
    seed_everything(3)
    a = (random.random(), torch.rand(3))
    seed_everything(3)
    b = (random.random(), torch.rand(3))
    assert a[0] == b[0] and torch.equal(a[1], b[1])
    with pytest.raises(TypeError, match=r"^seed must be an int in \[0, 2\*\*64 - 1\], got float$"):
        seed_everything(1.5)
    with pytest.raises(ValueError, match=r"^seed must be an int in \[0, 2\*\*64 - 1\], got 18446744073709551616$"):
        seed_everything(2**64)


# ---------------------------------------------------------------------------------------------- fit
def test_fit_reduces_loss_of_small_autoencoder():
    x = digits(128)
    seed_everything(0)
    model = FCAutoencoder(latent_dim=4, hidden_dims=(16,))
    history = fit(model, autoencoder_loss, x, epochs=10, batch_size=32, lr=1e-2, progress=False)
    assert isinstance(history, History) and list(history) == ["loss"]
    assert len(history["loss"]) == 10 and history.epochs == 10 and len(history.epoch_seconds) == 10
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert "History(10 epochs; loss: " in repr(history)


def test_fit_same_seed_is_bit_identical_and_seed_matters():
    x = digits(100)

    def run(seed):
        seed_everything(0)
        model = VAE(latent_dim=2, hidden_dim=16)  # the VAE's sampled noise must follow the seed too
        history = fit(model, vae_loss(), x, epochs=2, batch_size=16, seed=seed, progress=False)
        return model.state_dict(), history

    (w1, h1), (w2, h2), (w3, h3) = run(0), run(0), run(1)
    assert h1 == h2
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert h1 != h3 and not all(torch.equal(w1[k], w3[k]) for k in w1)


def test_fit_leaves_callers_random_state_alone():
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    fit(Scale(), autoencoder_loss, digits(8), epochs=1, progress=False)
    assert torch.equal(torch.rand(2), expected)


def test_history_keys_and_batch_weighted_means():
    x = digits(10)
    # batches of 4, 4 and 2 rows: the batch-size-weighted mean of batch means is the mean over all rows
    history = fit(Scale(), mean_terms, x, epochs=2, batch_size=4, progress=False)
    assert list(history) == ["loss", "batch_mean", "two"]
    assert history["two"] == [2.0, 2.0]
    assert history["batch_mean"] == pytest.approx([x.mean().item()] * 2, rel=1e-6)


def test_history_keys_from_sparse_loss_and_plain_tensor_loss():
    x = digits(32)
    h = fit(SparseAutoencoder(hidden_dim=8), sparse_loss("kl", lam=1e-3), x, epochs=1, progress=False)
    assert list(h) == ["loss", "reconstruction", "sparsity"]
    h = fit(Scale(), lambda m, xb, tb: (m(xb) - tb).pow(2).mean(), x, epochs=1, progress=False)
    assert list(h) == ["loss"]


def test_fit_batch_larger_than_n_and_denoising_target():
    x = digits(10)
    x_tilde = (x + 0.1).clamp(0, 1)
    model = Scale()
    history = fit(model, autoencoder_loss, x_tilde, x, epochs=3, batch_size=1000, lr=0.1, progress=False)
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]


def test_fit_cosine_schedule_changes_the_path():
    x = digits(32)
    plain, cosine = Scale(), Scale()
    fit(plain, autoencoder_loss, x, epochs=3, batch_size=8, lr=0.05, progress=False)
    fit(cosine, autoencoder_loss, x, epochs=3, batch_size=8, lr=0.05, lr_schedule="cosine", progress=False)
    assert not torch.equal(plain.w, cosine.w)


def test_fit_stops_on_nan_with_epoch_and_advice():
    calls = {"n": 0}

    def breaks_in_epoch_2(model, x, target):
        calls["n"] += 1
        loss = (model(x) - target).pow(2).mean()
        return loss * float("nan") if calls["n"] > 2 else loss

    with pytest.raises(ValueError, match=r"^loss became NaN at epoch 2; lower lr \(now 0\.001, try 0\.0001\) "
                                         r"or check the data and the loss$"):
        fit(Scale(), breaks_in_epoch_2, digits(4), epochs=5, batch_size=2, progress=False)
    with pytest.raises(ValueError, match=r"^loss became infinite at epoch 1; lower lr \(now 0\.5, try 0\.05\)"):
        fit(Scale(), lambda m, xb, tb: m(xb).sum() * float("inf"), digits(4), lr=0.5, progress=False)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"epochs": 0}, ValueError, r"^epochs must be an int >= 1, got 0$"),
    ({"epochs": 2.0}, TypeError, r"^epochs must be an int >= 1, got float$"),
    ({"batch_size": -1}, ValueError, r"^batch_size must be an int >= 1, got -1$"),
    ({"lr": 0.0}, ValueError, r"^lr must be a finite number > 0, got 0$"),
    ({"weight_decay": -1.0}, ValueError, r"^weight_decay must be a finite number >= 0, got -1$"),
    ({"lr_schedule": "linear"}, ValueError, r"^lr_schedule must be one of None, 'cosine', got 'linear'$"),
    ({"progress": "yes"}, TypeError, r"^progress must be None, True or False, got str$"),
    ({"seed": "0"}, TypeError, r"^seed must be an int in \[0, 2\*\*64 - 1\], got str$"),
    ({"seed": 2**64}, ValueError, r"^seed must be an int in \[0, 2\*\*64 - 1\], got 18446744073709551616$"),
    ({"seed": -1}, ValueError, r"^seed must be an int in \[0, 2\*\*64 - 1\], got -1$"),
    ({"input_transform": 3}, TypeError,
     r"^input_transform must be None or callable as input_transform\(x_batch, generator\), got int$"),
])
def test_fit_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        fit(Scale(), autoencoder_loss, digits(4), **{"progress": False, **kwargs})


def test_fit_rejects_bad_data_model_and_loss():
    x = digits(4)
    with pytest.raises(ValueError, match=r"^x must have shape \(N, 784\), got \(4, 10\)$"):
        fit(Scale(), autoencoder_loss, torch.rand(4, 10), progress=False)
    with pytest.raises(ValueError, match=r"^target must have the same shape as x \(4, 784\), got \(3, 784\)$"):
        fit(Scale(), autoencoder_loss, x, x[:3], progress=False)
    with pytest.raises(ValueError, match="^x contains NaN; every entry must be finite$"):
        fit(Scale(), autoencoder_loss, x * float("nan"), progress=False)
    with pytest.raises(TypeError, match="^model must be a torch.nn.Module, got function$"):
        fit(lambda t: t, autoencoder_loss, x, progress=False)
    with pytest.raises(TypeError, match=r"^loss_fn must return a scalar tensor or a dict with key 'loss', "
                                        r"got dict with keys \['mse'\]$"):
        fit(Scale(), lambda m, xb, tb: {"mse": (m(xb) - tb).pow(2).mean()}, x, progress=False)
    with pytest.raises(ValueError, match=r"^loss_fn term 'loss' must be a scalar tensor, got \(4, 784\)$"):
        fit(Scale(), lambda m, xb, tb: m(xb) - tb, x, progress=False)


def test_progress_is_quiet_under_ci(monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    fit(Scale(), autoencoder_loss, digits(4), epochs=2)
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("CI")
    fit(Scale(), autoencoder_loss, digits(4), epochs=2)
    assert "2/2" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- evaluate
def test_evaluate_weights_batches_and_restores_mode():
    x = digits(10)
    model = Scale().train()
    result = evaluate(model, mean_terms, x, batch_size=4)
    assert set(result) == {"loss", "batch_mean", "two"} and all(isinstance(v, float) for v in result.values())
    assert result["batch_mean"] == pytest.approx(x.mean().item(), rel=1e-6)
    assert result["loss"] == pytest.approx(0.25 * x.pow(2).mean().item(), rel=1e-5)  # (0.5 x - x)^2
    assert model.training


def test_evaluate_is_repeatable_for_a_sampling_loss():
    seed_everything(0)
    model, x = VAE(latent_dim=2, hidden_dim=16), digits(20)
    assert evaluate(model, vae_loss(), x) == evaluate(model, vae_loss(), x)
    with pytest.raises(ValueError, match=r"^batch_size must be an int >= 1, got 0$"):
        evaluate(model, vae_loss(), x, batch_size=0)


def test_progress_follows_env_flags(monkeypatch, capsys):
    # one reader for the whole library (_validate.env_flag): 1, true, yes (any case) are on, all else off
    monkeypatch.delenv("CI", raising=False)
    for value, quiet in (("1", True), ("YES", True), ("true", True), ("0", False), ("", False), ("on", False),
                         ("2", False)):
        monkeypatch.setenv("FUNML_STATIC", value)
        fit(Scale(), autoencoder_loss, digits(4), epochs=1)
        assert (capsys.readouterr().err == "") is quiet is env_flag("FUNML_STATIC"), value
    monkeypatch.setenv("CI", "false")  # read with env_flag: "false" is off, as in every other reader
    fit(Scale(), autoencoder_loss, digits(4), epochs=1)
    assert "1/1" in capsys.readouterr().err


# ------------------------------------------------------------------ reads are never wrong in silence
def test_fit_checks_target_like_x():
    x = digits(4)
    with pytest.raises(ValueError, match="^target contains NaN; every entry must be finite$"):
        fit(Scale(), autoencoder_loss, x, x * float("nan"), progress=False)
    with pytest.raises(ValueError, match=r"^target must have shape \(N, 784\), got \(4, 28, 28\)$"):
        fit(Scale(), autoencoder_loss, x, x.reshape(4, 28, 28), progress=False)
    with pytest.raises(TypeError, match=r"^target must have the dtype of x \(torch.float32\), got torch.float64$"):
        fit(Scale(), autoencoder_loss, x, x.double(), progress=False)
    with pytest.raises(TypeError, match=r"^target must be a floating-point tensor, got dtype torch.uint8$"):
        evaluate(Scale(), autoencoder_loss, x, (x * 255).to(torch.uint8))


def test_bernoulli_loss_refuses_data_outside_unit_interval_once_per_call(monkeypatch):
    x = digits(8)
    vae = VAE(latent_dim=2, hidden_dim=8)
    with pytest.raises(ValueError, match=r"^x must have all values in \[0, 1\] for vae_loss\(beta=1\), got values "
                                         r"in \[0, 255\]; images stored as 0-255 need x / 255$"):
        fit(vae, vae_loss(), torch.cat([x, torch.zeros(1, 784), torch.full((1, 784), 255.0)]), progress=False)
    target = x.clone()
    target[0, :2] = torch.tensor([-0.5, 1.0])
    with pytest.raises(ValueError, match=r"^target must have all values in \[0, 1\] for vae_loss\(beta=2\), got "
                                         r"values in \[-0.5, 1\]$"):
        fit(vae, vae_loss(beta=2.0), x, target, progress=False)
    with pytest.raises(ValueError, match=r"^x must have all values in \[0, 1\] for vae_loss\(beta=1\)"):
        evaluate(vae, vae_loss(), x * 2)
    assert vae_loss().data_range == (0.0, 1.0) and not hasattr(autoencoder_loss, "data_range")
    fit(Scale(), autoencoder_loss, x * 255, epochs=1, progress=False)  # squared error takes any range
    calls = []
    real = torch.aminmax
    monkeypatch.setattr(torch, "aminmax", lambda t: calls.append(t.shape) or real(t))
    fit(vae, vae_loss(), x, x, epochs=3, batch_size=2, progress=False)
    assert calls == [(8, 784), (8, 784)]  # x and target, once per call, not once per batch


def test_fit_names_a_float64_model_or_input():
    x = digits(4)
    with pytest.raises(TypeError, match=r"^model FCAutoencoder has torch.float64 parameters but x has dtype "
                                        r"torch.float32; convert the model with model.float\(\)$"):
        fit(FCAutoencoder(latent_dim=2, hidden_dims=(8,)).double(), autoencoder_loss, x, progress=False)
    with pytest.raises(TypeError, match=r"^x has dtype torch.float64 but model FCAutoencoder has torch.float32 "
                                        r"parameters; convert x with x.float\(\)$"):
        fit(FCAutoencoder(latent_dim=2, hidden_dims=(8,)), autoencoder_loss, x.double(), progress=False)
    with pytest.raises(TypeError, match=r"^x has dtype torch.float16 but model Scale has torch.float64 parameters; "
                                        r"use float32 for both \(x.float\(\), model.float\(\)\)$"):
        evaluate(Scale().double(), autoencoder_loss, x.half())
    mixed = FCAutoencoder(latent_dim=2, hidden_dims=(8,))
    mixed.decoder.double()
    with pytest.raises(TypeError, match=r"^model FCAutoencoder mixes parameter dtypes torch.float32, torch.float64; "
                                        r"convert it with model.float\(\)$"):
        fit(mixed, autoencoder_loss, x, progress=False)
    history = fit(Scale().double(), autoencoder_loss, x.double(), epochs=1, progress=False)  # consistent: fine
    assert history.epochs == 1


def test_fit_names_a_detached_loss_and_trains_inside_no_grad():
    with pytest.raises(ValueError, match=r"^loss_fn's 'loss' has no gradient \(requires_grad is False\): compute "
                                         r"it from the model's output without .detach\(\), .item\(\) or "
                                         r"torch.no_grad\(\)$"):
        fit(Scale(), lambda m, xb, tb: (m(xb) - tb).pow(2).mean().detach(), digits(4), progress=False)
    model = Scale()
    with torch.no_grad():  # a caller's no_grad does not silently stop training
        fit(model, autoencoder_loss, digits(4), epochs=2, lr=0.1, progress=False)
    assert model.w.item() != 0.5


def test_loss_fn_keys_must_not_change():
    calls = {"n": 0}

    def grows_a_term(model, x, target):
        calls["n"] += 1
        loss = (model(x) - target).pow(2).mean()
        return {"loss": loss, "extra": loss.detach()} if calls["n"] > 2 else {"loss": loss}

    with pytest.raises(ValueError, match=r"^loss_fn returned the terms \['loss', 'extra'\] on batch 3 but "
                                         r"\['loss'\] on the first; it must return the same terms on every batch$"):
        fit(Scale(), grows_a_term, digits(8), batch_size=2, progress=False)
    calls["n"] = 0  # one batch per epoch: the terms change between epochs
    with pytest.raises(ValueError, match=r"^loss_fn returned the terms \['loss', 'extra'\] in epoch 3 but \['loss'\] "
                                         r"before; it must return the same terms on every batch$"):
        fit(Scale(), grows_a_term, digits(8), epochs=4, batch_size=8, progress=False)
    calls["n"] = 0
    with pytest.raises(ValueError, match=r"^loss_fn returned the terms \['loss', 'extra'\] on batch 3 but"):
        evaluate(Scale(), grows_a_term, digits(8), batch_size=2)


def test_evaluate_names_a_model_on_another_device():
    with pytest.raises(ValueError, match=r"^x is on cpu but the model is on meta; move them to the same device, "
                                         r"e.g. model.to\(x.device\)$"):
        evaluate(Scale().to("meta"), autoencoder_loss, digits(4))


# ------------------------------------------------------------------------------- the epoch loop
def test_train_epoch_visits_every_row_once_and_returns_row_means():
    x, seen = digits(10), []

    def recording(model, xb, tb):
        seen.append(xb)
        return mean_terms(model, xb, tb)

    model = Scale()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    means = train_epoch(model, recording, optimizer, x, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert [len(b) for b in seen] == [4, 4, 2]
    assert torch.equal(torch.cat(seen).sort(0).values, x.sort(0).values)  # a permutation of the rows
    assert list(means) == ["loss", "batch_mean", "two"] and all(v.dim() == 0 for v in means.values())
    assert means["batch_mean"].item() == pytest.approx(x.mean().item(), rel=1e-6)
    assert means["two"].item() == 2.0


# ------------------------------------------------------------------------ per-batch input transform
def test_input_transform_corrupts_the_input_and_keeps_the_target_clean():
    x, calls = digits(10), []

    def recording(model, xb, tb):
        calls.append((xb, tb))
        return autoencoder_loss(model, xb, tb)

    def shift(xb, generator):
        assert isinstance(generator, torch.Generator) and xb.shape[1] == 784
        return xb + 0.5

    fit(Scale(), recording, x, epochs=2, batch_size=4, input_transform=shift, progress=False)
    assert [tuple(xb.shape) for xb, _ in calls] == [(4, 784), (4, 784), (2, 784)] * 2
    rows = {tuple(r.tolist()) for r in x}
    for xb, tb in calls:
        assert torch.equal(xb, tb + 0.5)  # the model saw the corrupted batch, the loss the clean one
        assert all(tuple(r.tolist()) in rows for r in tb)
    calls.clear()
    target = 1 - x
    fit(Scale(), recording, x, target, epochs=1, batch_size=5, input_transform=shift, progress=False)
    for xb, tb in calls:  # with a target: the input is transform(x rows), the target the matching target rows
        assert torch.allclose(xb - 0.5, 1 - tb)


def test_input_transform_is_seeded_by_fits_seed_and_fresh_each_batch():
    x = digits(16)

    def noisy(xb, generator):
        return xb + 0.1 * torch.randn(xb.shape, generator=generator, device=xb.device)

    def run(seed):
        seed_everything(0)
        model, noise = FCAutoencoder(latent_dim=2, hidden_dims=(8,)), []

        def recording(m, xb, tb):
            noise.append((xb - tb).clone())
            return autoencoder_loss(m, xb, tb)

        history = fit(model, recording, x, epochs=2, batch_size=8, seed=seed, input_transform=noisy,
                      progress=False)
        return model.state_dict(), history, noise

    (w1, h1, n1), (w2, h2, n2), (_, h3, n3) = run(0), run(0), run(1)
    assert h1 == h2 and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert all(torch.equal(a, b) for a, b in zip(n1, n2))
    assert h1 != h3 and not torch.equal(n1[0], n3[0])
    assert len(n1) == 4 and not any(torch.equal(n1[0], n) for n in n1[1:])  # fresh noise for every batch
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    fit(Scale(), autoencoder_loss, x, epochs=1, input_transform=noisy, progress=False)
    assert torch.equal(torch.rand(2), expected)  # the caller's random state is left alone


@pytest.mark.parametrize("transform, error, message", [
    (lambda xb, g: xb.reshape(-1, 28, 28), ValueError,
     r"^input_transform must return a tensor of the batch's shape \(2, 784\), got \(2, 28, 28\)$"),
    (lambda xb, g: xb[:1], ValueError,
     r"^input_transform must return a tensor of the batch's shape \(2, 784\), got \(1, 784\)$"),
    (lambda xb, g: xb.tolist(), TypeError, r"^input_transform must return a tensor, got list$"),
    (lambda xb, g: None, TypeError, r"^input_transform must return a tensor, got NoneType$"),
    (lambda xb, g: xb.double(), ValueError,
     r"^input_transform must return a torch.float32 tensor on cpu like the batch, got torch.float64 on cpu$"),
    (lambda xb: xb, TypeError, r"takes 1 positional argument but 2 were given"),
])
def test_bad_input_transforms_are_named(transform, error, message):
    with pytest.raises(error, match=message):
        fit(Scale(), autoencoder_loss, digits(4), batch_size=2, input_transform=transform, progress=False)
