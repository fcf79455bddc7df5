"""Tests for funml_lib.train: seeding, device choice, fit, evaluate, checkpoints."""
import random

import pytest
import torch
from torch import nn

from funml_lib.losses import autoencoder_loss, sparse_loss, vae_loss
from funml_lib.models import VAE, FCAutoencoder, SparseAutoencoder
from funml_lib.train import (History, evaluate, fit, load_checkpoint, pick_device, save_checkpoint,
                             seed_everything)


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
    with pytest.raises(TypeError, match="seed must be an int, got float"):
        seed_everything(1.5)


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
    ({"seed": "0"}, TypeError, r"^seed must be an int, got str$"),
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


# -------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
    seed_everything(0)
    model = SparseAutoencoder(hidden_dim=64)
    path = save_checkpoint(model, tmp_path / "sub" / "sparse.pt", epochs=3, history=History(loss=[1.0, 0.5]))
    seed_everything(1)
    other = SparseAutoencoder(hidden_dim=64)
    assert load_checkpoint(other, path) is other
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    extra = torch.load(path, weights_only=True)["extra"]
    assert extra == {"epochs": 3, "history": {"loss": [1.0, 0.5]}}


def test_checkpoint_refuses_other_architecture(tmp_path):
    path = save_checkpoint(SparseAutoencoder(hidden_dim=64), tmp_path / "sparse.pt")
    with pytest.raises(ValueError, match=r"^checkpoint holds a SparseAutoencoder\(hidden_dim=64\) but the model "
                                         r"is a SparseAutoencoder\(hidden_dim=128\)$"):
        load_checkpoint(SparseAutoencoder(hidden_dim=128), path)
    with pytest.raises(ValueError, match=r"^checkpoint holds a SparseAutoencoder\(hidden_dim=64\) but the model "
                                         r"is a VAE\(latent_dim=20, hidden_dim=400\)$"):
        load_checkpoint(VAE(), path)


def test_checkpoint_missing_or_corrupt_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint file '.*nothing.pt' does not exist"):
        load_checkpoint(Scale(), tmp_path / "nothing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad.pt' is not a readable checkpoint \(\w+\): the file is truncated "
                                         r"or was not written by save_checkpoint; re-create it with save_checkpoint$"):
        load_checkpoint(Scale(), bad)
    torch.save({"weights": 1}, bad)
    with pytest.raises(ValueError, match="bad.pt' is not a funml_lib checkpoint"):
        load_checkpoint(Scale(), bad)
