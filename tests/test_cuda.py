"""The GPU path: data, training, metrics and checkpoints on a CUDA device, and across devices.

Every device test here carries the `cuda` marker (`pytest -m cuda`) and runs on FUNML_TEST_DEVICE,
default "cuda"; without a CUDA device they skip cleanly. FUNML_TEST_DEVICE=cpu runs the same tests on
the CPU, which proves them (and `make gpu-check`'s dry path) on a machine without a GPU. The unmarked
tests at the end check `make gpu-check` itself (coursekit/gpu_check.py) and run everywhere.
Determinism: on the CPU the same seed gives bit-identical weights; on CUDA some kernels (atomics in
reductions, cuBLAS split-K) may differ in the last bits, so there the bar is agreement to 1e-5.
"""
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from funml_lib import (VAE, SparseAutoencoder, activations, autoencoder_loss, corrupt_gaussian,
                       corrupt_mask, corrupt_salt_pepper, describe_data, evaluate, fit,
                       importance_sampled_nll, load_checkpoint, load_mnist, negative_elbo, pick_device,
                       reconstruction_mse, save_checkpoint, sparse_loss, sparsity_stats, vae_loss)

DEVICE = os.environ.get("FUNML_TEST_DEVICE", "cuda")
if DEVICE not in ("cuda", "cpu"):
    raise ValueError(f"FUNML_TEST_DEVICE must be 'cuda' or 'cpu', got {DEVICE!r}")
ON_GPU = DEVICE == "cuda"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def device():
    if ON_GPU and not torch.cuda.is_available():
        pytest.skip("no CUDA device here (FUNML_TEST_DEVICE=cpu runs these on the CPU)")
    return pick_device(DEVICE)


@pytest.fixture(scope="module")
def digits(device):
    # whatever the machine has: genuine MNIST with FUNML_DATA, else the offline digits (cached once)
    x_train, y_train = load_mnist("train", device=device, limit=1024)
    x_test, y_test = load_mnist("test", device=device, limit=512)
    return x_train, y_train, x_test, y_test


def same_device(t, device) -> bool:
    return t.device.type == device.type


@pytest.mark.cuda
def test_data_loaded_onto_the_device(device, digits):
    x_train, y_train, x_test, y_test = digits
    for x, y in ((x_train, y_train), (x_test, y_test)):
        assert same_device(x, device) and same_device(y, device)
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1] == 784
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and 0 <= int(y.min()) and int(y.max()) <= 9
    # the same digits as a CPU load: the device copy changes nothing
    x_cpu, y_cpu = load_mnist("test", device="cpu", limit=512)
    assert torch.equal(x_test.cpu(), x_cpu) and torch.equal(y_test.cpu(), y_cpu)
    assert describe_data(x_train, x_test).startswith("Training: 1,024 of the ")
    if ON_GPU:
        x, _ = load_mnist("test", device="cuda:0", limit=8)
        assert x.device == torch.device("cuda", 0)


@pytest.mark.cuda
@pytest.mark.parametrize("corrupt", [corrupt_gaussian, corrupt_mask, corrupt_salt_pepper])
def test_corruptions_draw_on_the_device_reproducibly(device, digits, corrupt):
    x = digits[2][:64]
    a, b, c = corrupt(x, 0.3, seed=0), corrupt(x, 0.3, seed=0), corrupt(x, 0.3, seed=1)
    assert same_device(a, device) and torch.equal(a, b) and not torch.equal(a, c)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0


@pytest.mark.cuda
def test_fit_evaluate_and_metrics_on_the_device(device, digits):
    x_train, _, x_test, _ = digits
    model = VAE(latent_dim=20, hidden_dim=400)
    before = evaluate(model.to(device), vae_loss(), x_test)["loss"]
    history = fit(model, vae_loss(), x_train, epochs=3, batch_size=128, seed=0, progress=False)
    assert all(same_device(p, device) for p in model.parameters())
    assert all(math.isfinite(v) for v in history["loss"]) and history["loss"][-1] < history["loss"][0]
    after = evaluate(model, vae_loss(), x_test)
    assert set(after) >= {"loss"} and after["loss"] < before
    nelbo = negative_elbo(model, x_test, seed=0)
    nll = importance_sampled_nll(model, x_test[:64], k=16, seed=0)
    mse = reconstruction_mse(model, x_test)
    assert math.isfinite(nelbo) and math.isfinite(nll) and 0.0 < mse < 1.0
    assert nll < negative_elbo(model, x_test[:64], seed=0) + 5.0  # IS bound at most a little above the ELBO
    # the same weights give the same numbers on the CPU (deterministic parts only: no sampling)
    cpu_model = VAE(latent_dim=20, hidden_dim=400)
    cpu_model.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    assert reconstruction_mse(cpu_model, x_test.cpu()) == pytest.approx(mse, rel=1e-4)


@pytest.mark.cuda
def test_sparse_autoencoder_and_activations_on_the_device(device, digits):
    x_train, _, x_test, _ = digits
    model = SparseAutoencoder(hidden_dim=64)
    fit(model, sparse_loss("kl", 0.1, rho=0.05), x_train, epochs=2, seed=0, progress=False)
    z = activations(model, x_test)
    assert z.shape == (len(x_test), 64)
    stats = sparsity_stats(z, rho=0.05)
    assert 0.0 <= stats["frac_below"] <= 1.0 and math.isfinite(stats["mean_rho_hat"])
    assert math.isfinite(evaluate(model, autoencoder_loss, x_test)["loss"])


@pytest.mark.cuda
def test_input_transform_runs_on_the_device(device, digits):
    x_train = digits[0][:256]
    seen = []

    def noisy(xb, generator):
        seen.append((xb.device.type, generator.device.type))
        return (xb + 0.1 * torch.randn(xb.shape, generator=generator, device=xb.device)).clamp(0, 1)

    model = VAE(latent_dim=8, hidden_dim=64)
    try:
        history = fit(model, vae_loss(), x_train, x_train, epochs=1, seed=0, progress=False,
                      input_transform=noisy)
    except TypeError as e:  # fit without input_transform (an older funml_lib): nothing to check
        pytest.skip(f"fit has no input_transform here: {e}")
    assert math.isfinite(history["loss"][-1]) and set(seen) == {(device.type, device.type)}


@pytest.mark.cuda
def test_checkpoint_saved_on_the_device_loads_on_the_cpu(device, digits, tmp_path):
    model = VAE(latent_dim=20, hidden_dim=400)
    fit(model, vae_loss(), digits[0][:256], epochs=1, seed=0, progress=False)
    path = save_checkpoint(model, tmp_path / "on_device.pt", epochs=1)
    stored = torch.load(path, weights_only=True)
    assert all(t.device.type == "cpu" for t in stored["state_dict"].values())  # portable to any machine
    on_cpu = load_checkpoint(VAE(latent_dim=20, hidden_dim=400), path)
    for (k, a), b in zip(model.state_dict().items(), on_cpu.state_dict().values()):
        assert b.device.type == "cpu" and torch.equal(a.cpu(), b), k
    x = digits[2][:32]
    assert torch.allclose(on_cpu.decode_logits(on_cpu.encode(x.cpu())[0]),
                          model.decode_logits(model.encode(x)[0]).cpu(), atol=1e-4)


@pytest.mark.cuda
def test_checkpoint_saved_on_the_cpu_loads_onto_the_device(device, tmp_path):
    torch.manual_seed(0)
    model = VAE(latent_dim=20, hidden_dim=400)
    path = save_checkpoint(model, tmp_path / "on_cpu.pt")
    target = VAE(latent_dim=20, hidden_dim=400).to(device)
    loaded = load_checkpoint(target, path)
    assert loaded is target and all(same_device(p, device) for p in loaded.parameters())
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b.cpu())


@pytest.mark.cuda
def test_seeded_training_is_reproducible_on_the_device(device, digits):
    x_train = digits[0][:512]

    def run(seed):
        torch.manual_seed(123)  # the same initial weights every time
        model = VAE(latent_dim=20, hidden_dim=400)
        history = fit(model, vae_loss(), x_train, epochs=2, seed=seed, progress=False)
        return history["loss"], torch.cat([p.detach().flatten().cpu() for p in model.parameters()])

    (loss_a, w_a), (loss_b, w_b), (loss_c, w_c) = run(0), run(0), run(1)
    if ON_GPU:  # as far as CUDA allows: some reductions are not bit-reproducible
        assert loss_a == pytest.approx(loss_b, rel=1e-5) and torch.allclose(w_a, w_b, atol=1e-5)
    else:
        assert loss_a == loss_b and torch.equal(w_a, w_b)
    assert not torch.allclose(w_a, w_c, atol=1e-5)  # another seed: another batch order and noise


@pytest.mark.cuda
def test_global_random_state_is_left_alone(device, digits):
    # fit draws from its own seeded generators: the caller's CPU (and CUDA) random stream is untouched
    model = VAE(latent_dim=4, hidden_dim=32)  # (initialising weights draws from the global stream)
    torch.manual_seed(7)
    expected = torch.rand(3), torch.rand(3, device=device)
    torch.manual_seed(7)
    fit(model, vae_loss(), digits[0][:128], epochs=1, seed=5, progress=False)
    assert torch.equal(torch.rand(3), expected[0]) and torch.equal(torch.rand(3, device=device), expected[1])


# ---------------------------------------------------------------- `make gpu-check` itself (no marker: runs everywhere)
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run for real")
def test_gpu_check_fails_fast_and_clearly_without_cuda():
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "coursekit.gpu_check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "gpu-check: FAILED before starting: no CUDA device" in done.stderr
    assert "--device cpu --tiny" in done.stderr and time.perf_counter() - t0 < 60


def test_gpu_check_reads_pytest_summaries_and_finds_the_cuda_tests():
    from coursekit import gpu_check

    assert gpu_check.pytest_counts("== 9 passed, 1 skipped, 2 errors, 3 deselected in 4.2s ==") == {
        "passed": 9, "failed": 0, "skipped": 1, "error": 2, "deselected": 3}
    assert gpu_check.pytest_counts("1 failed, 1 error in 0.1s")["error"] == 1
    assert "tests/test_cuda.py" in gpu_check.test_files()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_make_gpu_check_target():
    # under `make test` the outer make's variables would make this one print "Entering directory"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}
    done = subprocess.run(["make", "--no-print-directory", "-n", "gpu-check", "GPU_PYTHON=python3"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0 and done.stdout.strip().endswith("python3 -m coursekit.gpu_check")
    venv = subprocess.run(["make", "--no-print-directory", "-n", "gpu-check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)
    assert venv.stdout.strip().endswith(".venv/bin/python -m coursekit.gpu_check")
