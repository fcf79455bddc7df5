"""Interactive explorers for the chapters, each with a static figure that teaches the same idea.

An explorer is the last line of a cell, e.g. `kl_explorer(rho=0.05)`. It shows a static figure (a row
of values: several rho, several models, several noise levels, a walk along z1 and z2: for print and
for readers without JavaScript) and below it sliders over precomputed frames (see funml_lib.frames):
with ipywidgets 8 they are linked in the browser, so they work in Jupyter, in Colab and on the book's
static HTML pages with no kernel behind them; with ipywidgets 7 a kernel callback swaps the frame.
Without usable widgets an explorer shows its static figure and one sentence why. FUNML_STATIC=1
skips the frames and shows only the static figure (quick test runs). The drawing lives in pure
functions (`draw_kl`, `draw_filters`, `draw_denoising`, `draw_decoded`) that draw on a matplotlib
Axes and return the numbers they drew.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor, nn

from funml_lib._validate import (check_in_unit_interval, check_images, check_nonnegative, check_positive,
                                 check_positive_int, check_probability_open)
from funml_lib.frames import (STATIC_ENV, Explorer, control, figure_frame, figure_png,  # noqa: F401
                              image_png, static_mode)
from funml_lib.metrics import evaluating


def _row(n: int, size: tuple[float, float], vertical: bool = False) -> tuple[Figure, list[Axes]]:
    """A figure with n panels in a row (or a column), each of `size` inches."""
    w, h = size
    fig = Figure(figsize=(w, h * n) if vertical else (w * n, h), layout="constrained")
    axes = fig.subplots(n, 1) if vertical else fig.subplots(1, n)
    return fig, list(np.atleast_1d(axes))


def _panels(values: Sequence[Any], size: tuple[float, float], draw: Callable[[Any, Axes], Any],
            dpi: int = 80) -> dict[tuple[int, ...], tuple[bytes, Any]]:
    """One matplotlib frame per value: {(i,): (PNG, what draw returned)}."""
    frames = {}
    for i, value in enumerate(values):
        fig = Figure(figsize=size, layout="constrained")
        numbers = draw(value, fig.add_subplot())
        frames[(i,)] = (figure_frame(fig, dpi=dpi, tight=False), numbers)  # same size for every frame
    return frames


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters(), torch.empty(0)).device


def _check_weights(name: str, model: nn.Module | Tensor) -> None:
    """Refuse a model (or weight tensor) with NaN or infinite weights: every frame would be black."""
    tensors = [model] if isinstance(model, Tensor) else list(model.parameters())
    for t in tensors:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = "NaN" if bool(torch.isnan(t).any()) else "infinite"
            raise ValueError(f"{name} has {bad} weights (its training diverged: train it again, e.g. with "
                             "a smaller learning rate); an explorer of it would show only blank frames")


def _check_models(models: object) -> dict[str, nn.Module]:
    if isinstance(models, nn.Module):
        models = {type(models).__name__: models}
    if not isinstance(models, Mapping) or not models or not all(
            isinstance(k, str) and isinstance(v, nn.Module) for k, v in models.items()):
        raise TypeError("models must be an nn.Module or a non-empty dict of name -> nn.Module, "
                        f"got {type(models).__name__}")
    for name, model in models.items():
        _check_weights(f"models[{name!r}]", model)
    return dict(models)


# ------------------------------------------------------------------------------ KL sparsity (ch. 2)
KL_RHOS = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def kl_curve(rho: float, points: int = 999) -> dict[str, np.ndarray]:
    """KL(rho || rho_hat) in nats on rho_hat = linspace(0.001, 0.999, points): {"rho_hat", "kl"}."""
    from funml_lib.losses import kl_sparsity

    rho = check_probability_open("rho", rho)
    rho_hat = torch.linspace(0.001, 0.999, points, dtype=torch.float64)
    return {"rho_hat": rho_hat.numpy(), "kl": kl_sparsity(rho, rho_hat).numpy()}


def draw_kl(rho: float, ax: Axes) -> dict[str, np.ndarray]:
    """Draw KL(rho || rho_hat) over rho_hat in (0, 1) on `ax`; return {"rho_hat": (M,), "kl": (M,)} in nats."""
    from funml_lib.plotting import plot_kl_sparsity_curve

    curve = kl_curve(rho)
    plot_kl_sparsity_curve(rho, ax=ax)
    return curve


def kl_explorer(rho: float = 0.05, static_rhos: Sequence[float] = (0.02, 0.05, 0.1, 0.3),
                rhos: Sequence[float] = KL_RHOS) -> Explorer:
    """rho slider over KL(rho || rho_hat) curves (one frame per value of `rhos`, plus `rho`);
    the static figure shows the curve for each of static_rhos."""

    rho = check_probability_open("rho", rho)
    statics = [check_probability_open("static_rhos", r) for r in static_rhos]
    grid = sorted({check_probability_open("rhos", r) for r in rhos} | {rho})
    if not statics:
        raise ValueError("static_rhos must hold at least one value in (0, 1)")

    def static() -> Figure:
        fig, axes = _row(len(statics), (4.2, 3.2))
        for r, ax in zip(statics, axes):
            draw_kl(r, ax)
        return fig

    return Explorer(static, [control("rho", "ρ", grid, value=rho)],
                    lambda: _panels(grid, (5.6, 3.6), draw_kl),
                    "The sparsity penalty KL(ρ ‖ ρ̂) in nats over the mean activation ρ̂ for the chosen "
                    "target ρ: zero at ρ̂ = ρ, rising steeply towards ρ̂ = 1.")


# ---------------------------------------------------------------------------- filter grids (ch. 2)
def _first_layer(name: str, model: nn.Module | Tensor) -> Tensor:
    if isinstance(model, Tensor):
        return model
    if isinstance(getattr(model, "W1", None), Tensor):
        return model.W1
    for layer in model.modules() if isinstance(model, nn.Module) else ():
        if isinstance(layer, nn.Linear) and layer.in_features == 784:
            return layer.weight
    raise TypeError(f"models[{name!r}] must be a model with a first Linear layer on 784 pixels "
                    f"(or its weight tensor W1), got {type(model).__name__}")


def draw_filters(model: nn.Module | Tensor, ax: Axes, title: str | None = None, nrow: int = 16) -> Tensor:
    """Draw the first-layer filters W1 (hidden, 784) of `model` as 28x28 tiles; return W1 on the CPU."""
    from funml_lib.plotting import plot_filters

    W1 = _first_layer(title or "model", model).detach().cpu()
    plot_filters(W1, nrow=nrow, title=title, ax=ax)
    return W1


def filter_explorer(models: Mapping[str, nn.Module | Tensor], nrow: int = 16, static_lines: int = 2) -> Explorer:
    """A slider over models (e.g. one per penalty and lambda) showing each one's filters at native
    resolution; the static figure shows the first `static_lines` lines of filters of every model.

    models: name -> trained model (SparseAutoencoder, FCAutoencoder, ...) or its W1 tensor (hidden, 784).
    """
    from funml_lib.plotting import filter_grid

    if not isinstance(models, Mapping) or not models or not all(isinstance(k, str) for k in models):
        raise TypeError(f"models must be a non-empty dict of name -> model, got {type(models).__name__}")
    nrow = check_positive_int("nrow", nrow)
    n_static = nrow * check_positive_int("static_lines", static_lines)
    weights = {k: _first_layer(k, m).detach().cpu() for k, m in models.items()}  # validates every entry
    for name, w1 in weights.items():
        _check_weights(f"models[{name!r}]", w1)
    names = list(weights)
    native = 2 + 30 * min(nrow, len(weights[names[0]]))  # pixels across one grid

    def static() -> Figure:  # about one figure pixel per filter pixel: sharp and light
        lines = -(-min(n_static, len(weights[names[0]])) // nrow)
        fig, axes = _row(len(weights), (native / 100 + 0.3, (2 + 30 * lines) / 100 + 0.35), vertical=True)
        for name, ax in zip(weights, axes):
            draw_filters(weights[name][:n_static], ax, title=name, nrow=nrow)
            ax.set_xlabel("")
        return fig

    def render() -> dict[tuple[int, ...], tuple[bytes, Any]]:
        return {(i,): (image_png(filter_grid(weights[n], nrow).numpy()), weights[n]) for i, n in enumerate(names)}

    width = f"{native * max(1, 720 // native)}px"  # an integer scale: every pixel equally wide
    return Explorer(static, [control("model", "model", names, fmt=str, value=names[0])], render,
                    "First-layer filters of the chosen model: one 28 × 28 tile per hidden unit, each scaled "
                    "to its own range (black = most negative, white = most positive weight).", width=width)


# -------------------------------------------------------------------------------- denoising (ch. 3)
def draw_denoising(models: Mapping[str, nn.Module] | nn.Module, x: Tensor, sigma: float, ax: Axes,
                   seed: int = 0) -> dict[str, float]:
    """Draw clean x, noisy x_tilde and each model's reconstruction as labelled rows; return MSEs.

    x: (n, 784) in [0, 1]; sigma: Gaussian noise std. Returns {"noisy": MSE(x_tilde, x), name: MSE(x_hat, x)},
    per-pixel means against the clean x.
    """
    from funml_lib.corruptions import corrupt_gaussian
    from funml_lib.plotting import show_rows

    models = _check_models(models)
    x = check_in_unit_interval("x", check_images("x", x))
    sigma = check_nonnegative("sigma", sigma)
    x_tilde = corrupt_gaussian(x, sigma, seed=seed)
    mse = {"noisy": float((x_tilde - x).pow(2).mean())}
    rows = {"clean x": x, f"noisy (MSE {mse['noisy']:.4f})": x_tilde}
    for name, model in models.items():
        with evaluating(model):
            out = model(x_tilde.to(_device(model)))
        x_hat = (out[0] if isinstance(out, tuple) else out).to(x.device)
        mse[name] = float((x_hat - x).pow(2).mean())
        rows[f"{name} (MSE {mse[name]:.4f})"] = x_hat
    show_rows(rows, nrow=len(x), title=f"Gaussian noise σ = {sigma:g}", ax=ax)
    return mse


def denoising_explorer(models: Mapping[str, nn.Module] | nn.Module, x: Tensor,
                       sigmas: Sequence[float] = (0.1, 0.3, 0.5, 0.7), n_show: int = 8,
                       seed: int = 0) -> Explorer:
    """Noise-level slider: noisy input vs each model's denoised output (one frame per sigma);
    static figure: one block per sigma.

    models: name -> trained denoising autoencoder (or one model); x: (N, 784) clean digits, the first
    n_show are drawn; sigmas: noise levels offered (std of the added Gaussian noise).
    """

    models = _check_models(models)
    x = check_in_unit_interval("x", check_images("x", x))[:check_positive_int("n_show", n_show)]
    if isinstance(sigmas, (str, bytes)) or not isinstance(sigmas, Sequence) or not sigmas:
        raise ValueError(f"sigmas must be a non-empty list of noise levels >= 0, got {sigmas!r}")
    sigmas = [check_nonnegative("sigmas", s) for s in sigmas]
    size = (0.6 * len(x) + 2.4, 0.6 * (2 + len(models)) + 0.6)

    def draw(sigma: float, ax: Axes) -> dict[str, float]:
        return draw_denoising(models, x, sigma, ax, seed=seed)

    def static() -> Figure:
        fig, axes = _row(len(sigmas), size, vertical=True)
        for s, ax in zip(sigmas, axes):
            draw(s, ax)
            ax.set_xlabel("")
        return fig

    return Explorer(static, [control("sigma", "σ", sigmas, value=sigmas[len(sigmas) // 2])],
                    lambda: _panels(sigmas, size, draw),
                    f"{len(x)} digits: clean, with Gaussian noise of the chosen σ, and denoised by "
                    f"{', '.join(models)} (per-pixel MSE against the clean digits in brackets).")


# ------------------------------------------------------------------------------ 2-d VAE (ch. 5)
def _decode_2d(vae2d: nn.Module, z: Tensor) -> Tensor:
    with evaluating(vae2d):
        return vae2d.decode(z.to(_device(vae2d))).detach().float().cpu()


def _check_vae2d(vae2d: object) -> nn.Module:
    if not isinstance(vae2d, nn.Module) or not callable(getattr(vae2d, "decode", None)):
        raise TypeError(f"vae2d must be a model with a decode(z) method, got {type(vae2d).__name__}")
    latent = getattr(vae2d, "config", {}).get("latent_dim", 2)
    if latent != 2:
        raise ValueError(f"vae2d must have a 2-d latent space (latent_dim=2), got latent_dim={latent}")
    return vae2d


def draw_decoded(vae2d: nn.Module, z1: float, z2: float, ax: Axes) -> np.ndarray:
    """Decode the point z = (z1, z2) and draw the digit on `ax`; return the (28, 28) image in [0, 1]."""
    from funml_lib.plotting import show_images

    vae2d = _check_vae2d(vae2d)
    z = torch.tensor([[float(z1), float(z2)]])
    if not math.isfinite(z.sum()):
        raise ValueError(f"z1 and z2 must be finite numbers, got ({z1}, {z2})")
    image = _decode_2d(vae2d, z)
    show_images(image, nrow=1, title=f"decode(z), z = ({float(z1):.1f}, {float(z2):.1f})", ax=ax)
    ax.set_xlabel("")
    return image.reshape(28, 28).numpy()


def latent_explorer(vae2d: nn.Module, z_range: float = 2.1, n_static: int = 9, n_grid: int = 15) -> Explorer:
    """z1 / z2 sliders over digits decoded on an n_grid x n_grid grid of z in [-z_range, z_range]^2;
    static figure: walks along z1 and along z2.

    The static walks go through n_static values in [-2, 2] on one axis with the other held at 0
    (the prior N(0, I) puts 95% of its mass within about +-2 per axis).
    """
    from funml_lib.plotting import show_rows

    vae2d = _check_vae2d(vae2d)
    _check_weights("vae2d", vae2d)
    z_range = check_positive("z_range", z_range)
    n_static = check_positive_int("n_static", n_static)
    grid = [round(float(v), 6) for v in np.linspace(-z_range, z_range, check_positive_int("n_grid", n_grid))]

    def static() -> Figure:
        steps = torch.linspace(-2.0, 2.0, n_static)
        zeros = torch.zeros(n_static)
        rows = {"vary z1 (z2 = 0)": _decode_2d(vae2d, torch.stack([steps, zeros], 1)),
                "vary z2 (z1 = 0)": _decode_2d(vae2d, torch.stack([zeros, steps], 1))}
        fig = Figure(figsize=(0.6 * n_static + 2.4, 2.2), layout="constrained")
        ax = fig.add_subplot()
        show_rows(rows, nrow=n_static, ax=ax, title=f"decoded digits for z from -2 to 2 in {n_static} steps")
        ax.set_xlabel("varied coordinate: " + "  ".join(f"{float(s):.1f}" for s in steps))
        return fig

    def render() -> dict[tuple[int, ...], tuple[bytes, Any]]:
        z1, z2 = torch.meshgrid(torch.tensor(grid), torch.tensor(grid), indexing="ij")
        images = _decode_2d(vae2d, torch.stack([z1.reshape(-1), z2.reshape(-1)], 1)).reshape(-1, 28, 28)
        n = len(grid)
        return {(i, j): (image_png(images[i * n + j].numpy(), scale=4), images[i * n + j].numpy())
                for i in range(n) for j in range(n)}

    fmt = "{:.1f}".format
    controls = [control("z1", "z₁", grid, fmt=fmt, value=0.0), control("z2", "z₂", grid, fmt=fmt, value=0.0)]
    return Explorer(static, controls, render,
                    "The decoder's mean image G_φ(z) for the chosen point z = (z₁, z₂) of the latent plane.",
                    width="112px")
