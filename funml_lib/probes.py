"""Probing a trained autoencoder: does it copy its input, and are its codes useful features?

- `probe_images(x, seed)`: inputs that are not MNIST digits (shifted digits, two shapes, noise in the
  central square). A model that has learnt what digits look like fails on them; a copier does not.
- `linear_map(model)`: the matrix M of x_hat = M x + c when the model is affine, else None.
- `identity_test(model, x, probes)`: reconstruction MSE on digits and on every probe kind, and for an
  affine model ||M - I|| / ||I|| and the number of singular values of M within 10 % of 1.
- `linear_dae_optimum(x, sigma)`: the best affine denoiser for Gaussian noise, in closed form,
  M = Sigma (Sigma + sigma^2 I)^-1 (Bishop, 1995: training with noise is like ridge regularization).
- `linear_probe(z_train, y_train, z_test, y_test)`: test accuracy of a logistic regression trained on
  frozen codes, the usual measure of how useful features are for classification.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funml_lib._validate import (check_images, check_model_finite, check_nonnegative, check_positive, check_positive_int,
                                 check_seed, check_tensor)
from funml_lib.metrics import evaluating, reconstruction_mse

PIXELS, SIDE = 784, 28


def probe_images(x: Tensor, seed: int = 0, n: int = 4) -> dict[str, Tensor]:
    """Inputs that are not MNIST digits, each (k, 784) in [0, 1] on x's device.

    x: (N >= n, 784) test digits. Returns {"shifted digits": x[:n] moved 8 pixels to the right (no
    wrap-around), "shapes": a square outline and a diagonal cross (2 images), "noise": n images of
    uniform noise inside the central 19 x 19 square (drawn on the CPU from `seed`, so every device gets
    the same pixels)}.
    """
    check_images("x", x)
    n = check_positive_int("n", n)
    seed = check_seed("seed", seed)
    if x.shape[0] < n:
        raise ValueError(f"x must hold at least n = {n} digits to shift, got {x.shape[0]}")
    side = torch.arange(SIDE, device=x.device)
    r, c = torch.meshgrid(side, side, indexing="ij")
    centre = ((r - 14).abs() <= 9) & ((c - 14).abs() <= 9)
    shifted = torch.zeros(n, SIDE, SIDE, device=x.device, dtype=x.dtype)
    shifted[:, :, 8:] = x[:n].view(n, SIDE, SIDE)[:, :, :-8]
    outer = ((r - 14).abs() <= 7) & ((c - 14).abs() <= 7)
    box = outer & ~(((r - 14).abs() <= 5) & ((c - 14).abs() <= 5))
    cross = (((r - c).abs() <= 1) | ((r + c - 27).abs() <= 1)) & centre
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, SIDE, SIDE, generator=g).to(x.device, x.dtype) * centre
    return {"shifted digits": shifted.reshape(n, PIXELS),
            "shapes": torch.stack([box, cross]).to(x.dtype).reshape(2, PIXELS),
            "noise": noise.reshape(n, PIXELS)}


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def linear_map(model: nn.Module, rtol: float = 1e-4) -> Tensor | None:
    """M (784, 784) with model(x) = M x + c for every x, or None when the model is not affine.

    Read off from 785 inputs: c = model(0) and column p of M = model(e_p) - c. The model counts as
    affine when M x reproduces model(x) - c on random images to within `rtol` (relative L2).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    rtol = check_positive("rtol", rtol)
    check_model_finite("model", model)  # NaN weights would read as "not affine" without a word
    device = _device(model)
    eye = torch.eye(PIXELS, device=device)
    x = torch.rand(8, PIXELS, generator=torch.Generator().manual_seed(0)).to(device)
    with evaluating(model):
        out = model(torch.cat([torch.zeros(1, PIXELS, device=device), eye, x]))
    if not isinstance(out, Tensor) or out.shape != (1 + PIXELS + 8, PIXELS):
        raise TypeError(f"model must map (N, 784) images to (N, 784) reconstructions, "
                        f"got {type(model).__name__}")
    c, M = out[0], (out[1:1 + PIXELS] - out[0]).T          # column p: the response to pixel p
    predicted, actual = x @ M.T, out[1 + PIXELS:] - c
    error = torch.linalg.norm(predicted - actual) / torch.linalg.norm(actual).clamp_min(1e-12)
    return M if float(error) <= rtol else None


def identity_test(model: nn.Module, x: Tensor, probes: dict[str, Tensor],
                  inked: Tensor | None = None) -> dict[str, float | int | None]:
    """How close is `model` to copying its input? One row of the chapters' identity-test tables.

    x: (N, 784) test digits; probes: {kind: (k, 784) images}, e.g. probe_images(x); inked: (784,) bool,
    the pixels that carry ink in some training digit ((x_train > 0).any(0)); None: all pixels.
    Returns {"test digits": MSE, <kind>: MSE for each probe kind, "distance to I": ||M - I||_F / ||I||_F
    on the inked pixels, "singular values near 1": how many singular values of M lie in (0.9, 1.1)};
    the last two are None when the model is not affine (see linear_map). A copier has MSE 0 on every
    input, distance 0 and all singular values equal to 1.
    """
    check_images("x", x)
    if not isinstance(probes, dict) or not probes:
        raise TypeError("probes must be a non-empty dict {kind: (k, 784) images}, e.g. probe_images(x)")
    row: dict[str, float | int | None] = {"test digits": reconstruction_mse(model, x)}
    for kind, images in probes.items():
        row[kind] = reconstruction_mse(model, check_images(f"probes[{kind!r}]", images))
    if inked is None:
        inked = torch.ones(PIXELS, dtype=torch.bool, device=x.device)
    check_tensor("inked", inked)
    if inked.dtype != torch.bool or inked.shape != (PIXELS,) or not bool(inked.any()):
        raise ValueError(f"inked must be a (784,) bool tensor with at least one True, e.g. "
                         f"(x_train > 0).any(0), got dtype {inked.dtype}, shape {tuple(inked.shape)}")
    M = linear_map(model)
    if M is None:
        row.update({"distance to I": None, "singular values near 1": None})
        return row
    M, inked = M.cpu(), inked.cpu()            # linear algebra on the CPU: MPS has no svdvals
    M_inked = M[inked][:, inked]
    eye = torch.eye(M_inked.shape[0])
    singular_values = torch.linalg.svdvals(M)
    row["distance to I"] = float(torch.linalg.norm(M_inked - eye) / torch.linalg.norm(eye))
    row["singular values near 1"] = int(((singular_values > 0.9) & (singular_values < 1.1)).sum())
    return row


def linear_dae_optimum(x: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """The affine denoiser (M, c) that minimises E ||x - (M (x + sigma eps) + c)||^2, eps ~ N(0, I).

    x: (N, D) clean data; sigma >= 0: noise standard deviation (unclipped noise). With mean mu and
    covariance Sigma = (1/N) sum_i (x_i - mu)(x_i - mu)^T of the rows of x:
        M = Sigma (Sigma + sigma^2 I)^-1,   c = (I - M) mu.
    M shrinks the data's principal direction with variance lambda by lambda / (lambda + sigma^2).
    sigma = 0 gives M = Sigma Sigma^+ (the identity on the data's span). Returns float32 on x's device.
    """
    x = check_images("x", x, features=None)  # one NaN would make every entry of M NaN
    sigma = check_nonnegative("sigma", sigma)
    xd = x.detach().cpu().double()             # float64 on the CPU: MPS has no float64
    mu = xd.mean(0)
    centred = xd - mu
    cov = centred.T @ centred / xd.shape[0]
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    if sigma == 0.0:
        M = cov @ torch.linalg.pinv(cov, hermitian=True)
    else:
        M = torch.linalg.solve(cov + sigma**2 * eye, cov).T   # (Sigma + s^2 I) M^T = Sigma
    return M.to(x.device, x.dtype), ((eye - M) @ mu).to(x.device, x.dtype)


def _check_labels(name: str, y: object, n: int) -> Tensor:
    check_tensor(name, y)
    if y.dtype in (torch.bool,) or y.is_floating_point() or y.is_complex() or y.shape != (n,):
        raise ValueError(f"{name} must be an integer tensor of shape ({n},), one class per row, "
                         f"got dtype {y.dtype}, shape {tuple(y.shape)}")
    if n and int(y.min()) < 0:
        raise ValueError(f"{name} must hold class indices >= 0, got {int(y.min())}")
    return y


def linear_probe(z_train: Tensor, y_train: Tensor, z_test: Tensor, y_test: Tensor, *,
                 steps: int = 300, lr: float = 0.05, weight_decay: float = 1e-3) -> float:
    """Test accuracy (in [0, 1]) of multinomial logistic regression fitted on frozen features.

    z_train: (N, D) codes (or pixels) of the labelled training digits, y_train: (N,) class indices;
    z_test: (M, D), y_test: (M,). Every feature is standardised with the training mean and standard
    deviation, then W (D, K) and b (K,), starting at zero, minimise
        mean_i CE(softmax(z_i W + b), y_i) + weight_decay * ||W||^2
    with `steps` full-batch Adam steps. The objective is convex, so the result depends on the
    features, not on an initialisation or a seed. On the CPU it runs on one thread: the problem is
    too small to gain from more, and on a busy machine thread hand-offs would dominate.
    """
    z_train = check_images("z_train", z_train, features=None)
    z_test = check_images("z_test", z_test, features=None)
    if z_test.dtype != z_train.dtype:  # else torch's "expected m1 and m2 to have the same dtype" mid-fit
        raise TypeError(f"z_test must have the dtype of z_train ({z_train.dtype}), got {z_test.dtype}")
    if z_test.shape[1] != z_train.shape[1]:
        raise ValueError(f"z_test must have the {z_train.shape[1]} features of z_train, "
                         f"got {z_test.shape[1]}")
    y_train = _check_labels("y_train", y_train, z_train.shape[0]).to(z_train.device)
    y_test = _check_labels("y_test", y_test, z_test.shape[0]).to(z_test.device)
    classes = y_train.unique()
    if len(classes) < 2:  # one class: every prediction is right, and 100 % would mean nothing
        raise ValueError(f"y_train must hold at least two classes for a classifier to be tested, got only "
                         f"class {int(classes[0])} in all {len(y_train)} rows")
    steps = check_positive_int("steps", steps)
    lr = check_positive("lr", lr)
    weight_decay = check_nonnegative("weight_decay", weight_decay)
    z_train, z_test = z_train.detach(), z_test.detach()
    mean, std = z_train.mean(0), z_train.std(0).clamp_min(1e-6)   # constant features become 0
    a_train, a_test = (z_train - mean) / std, (z_test - mean) / std
    k = int(max(y_train.max(), y_test.max())) + 1
    W = torch.zeros(a_train.shape[1], k, device=a_train.device, dtype=a_train.dtype, requires_grad=True)
    b = torch.zeros(k, device=a_train.device, dtype=a_train.dtype, requires_grad=True)
    optimizer = torch.optim.Adam([W, b], lr=lr)
    threads = torch.get_num_threads()
    if a_train.device.type == "cpu":
        torch.set_num_threads(1)
    try:
        with torch.enable_grad():
            for _ in range(steps):
                loss = F.cross_entropy(a_train @ W + b, y_train) + weight_decay * (W**2).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return float(((a_test @ W + b).argmax(1) == y_test).float().mean())
    finally:
        torch.set_num_threads(threads)
