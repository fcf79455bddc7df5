"""Interactive explorers for the chapters, each with a static figure that teaches the same idea.

An explorer is the last line of a cell, e.g. `kl_explorer(rho=0.05)`. It always shows a static figure
(a row of values: several rho, several lambda models, several noise levels, a walk along z1 and z2),
and below it, in Jupyter or Colab, a live ipywidgets control that redraws one panel. The book's HTML
has no kernel, so a slider there could move but never redraw: when the environment variable
FUNML_STATIC=1 is set (the book build sets it) no widget is created at all, only the static figure.
The drawing lives in pure functions (`draw_kl`, `draw_filters`, `draw_denoising`, `draw_decoded`) that
draw on a given matplotlib Axes and return the numbers they drew.
"""
from __future__ import annotations

import io
import math
import os
import sys
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor, nn

from funml_lib._validate import (check_in_unit_interval, check_images, check_nonnegative,
                               check_positive, check_positive_int, check_probability_open)
# eval mode + no_grad for drawing, the model's previous mode restored afterwards
from funml_lib.metrics import _evaluating

STATIC_ENV = "FUNML_STATIC"


def static_mode() -> bool:
    """True when explorers must not create widgets (env FUNML_STATIC set to 1/true/yes: the book build)."""
    return os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes")


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a matplotlib Figure to PNG bytes (works with any backend, including Agg)."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class Explorer:
    """A static figure plus, outside the book build, a live widget that redraws one panel.

    static: builds the static Figure; controls: builds {name: ipywidget with .value};
    draw(ax=..., **values) draws one panel for the current control values and returns its numbers.
    `controls`, `figure` and `last` (the latest return value of draw) exist once `widget` was built.
    """

    def __init__(self, static: Callable[[], Figure], controls: Callable[[], dict[str, Any]],
                 draw: Callable[..., Any], figsize: tuple[float, float]):
        self._make_static, self._make_controls, self._draw = static, controls, draw
        self._figsize = figsize
        self._static: Figure | None = None
        self._widget: Any = None
        self.controls: dict[str, Any] = {}
        self.figure: Figure | None = None
        self.last: Any = None

    @property
    def static_figure(self) -> Figure:
        """The figure shown everywhere, including the static HTML book."""
        if self._static is None:
            self._static = self._make_static()
        return self._static

    @property
    def widget(self) -> Any:
        """The live ipywidgets box (controls above the redrawn panel); built on first use."""
        if self._widget is None:
            import ipywidgets as w

            _colab_widget_support()
            self.controls = self._make_controls()
            self.figure = Figure(figsize=self._figsize)
            self._image = w.Image(format="png")
            for control in self.controls.values():
                control.observe(self.redraw, names="value")
            self.redraw()
            self._widget = w.VBox([w.HBox(list(self.controls.values())), self._image])
        return self._widget

    def values(self) -> dict[str, Any]:
        """Current control values, e.g. {"rho": 0.05}."""
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self, change: object = None) -> None:
        """Redraw the live panel for the current control values (called by the controls)."""
        self.figure.clear()
        self.last = self._draw(ax=self.figure.add_subplot(), **self.values())
        self._image.value = figure_png(self.figure)

    def _ipython_display_(self) -> None:
        from IPython.display import Image, display

        display(Image(data=figure_png(self.static_figure), format="png"))
        if not static_mode():
            display(self.widget)

    def __repr__(self) -> str:
        return f"Explorer(controls={list(self.controls) or 'not built'})"


def _colab_widget_support() -> None:
    # Colab renders ipywidgets 8 only through its custom widget manager; harmless with ipywidgets 7
    if "google.colab" in sys.modules:
        from google.colab import output
        output.enable_custom_widget_manager()


def _row(n: int, size: tuple[float, float], vertical: bool = False) -> tuple[Figure, list[Axes]]:
    """A figure with n panels in a row (or a column), each of `size` inches."""
    w, h = size
    fig = Figure(figsize=(w, h * n) if vertical else (w * n, h), layout="constrained")
    axes = fig.subplots(n, 1) if vertical else fig.subplots(1, n)
    return fig, list(np.atleast_1d(axes))


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters(), torch.empty(0)).device


def _check_models(models: object) -> dict[str, nn.Module]:
    if isinstance(models, nn.Module):
        return {type(models).__name__: models}
    if not isinstance(models, Mapping) or not models or not all(
            isinstance(k, str) and isinstance(v, nn.Module) for k, v in models.items()):
        raise TypeError("models must be an nn.Module or a non-empty dict of name -> nn.Module, "
                        f"got {type(models).__name__}")
    return dict(models)


# ------------------------------------------------------------------------------ KL sparsity (ch. 2)
def draw_kl(rho: float, ax: Axes) -> dict[str, np.ndarray]:
    """Draw KL(rho || rho_hat) over rho_hat in (0, 1) on `ax`; return {"rho_hat": (M,), "kl": (M,)} in nats."""
    from funml_lib.plotting import plot_kl_sparsity_curve

    rho = check_probability_open("rho", rho)
    plot_kl_sparsity_curve(rho, ax=ax)
    rho_hat, kl = ax.lines[0].get_data()
    return {"rho_hat": np.asarray(rho_hat), "kl": np.asarray(kl)}


def kl_explorer(rho: float = 0.05, static_rhos: Sequence[float] = (0.02, 0.05, 0.1, 0.3)) -> Explorer:
    """rho slider redrawing KL(rho || rho_hat); the static figure shows the curve for each of static_rhos."""
    import ipywidgets  # noqa: F401  (fail early, in every mode, if the package is missing)

    rho = check_probability_open("rho", rho)
    rhos = [check_probability_open("static_rhos", r) for r in static_rhos]
    if not rhos:
        raise ValueError("static_rhos must hold at least one value in (0, 1)")

    def static() -> Figure:
        fig, axes = _row(len(rhos), (4.2, 3.2))
        for r, ax in zip(rhos, axes):
            draw_kl(r, ax)
        return fig

    def controls() -> dict[str, Any]:
        import ipywidgets as w
        return {"rho": w.FloatSlider(value=rho, min=0.01, max=0.5, step=0.01, description="ρ",
                                     continuous_update=False, readout_format=".2f")}

    return Explorer(static, controls, draw_kl, figsize=(6.0, 4.0))


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


def filter_explorer(models: Mapping[str, nn.Module | Tensor], nrow: int = 16) -> Explorer:
    """Pick a model (e.g. one per lambda) and see its filters; the static figure shows all side by side.

    models: name -> trained model (SparseAutoencoder, FCAutoencoder, ...) or its W1 tensor (hidden, 784).
    """
    import ipywidgets  # noqa: F401

    if not isinstance(models, Mapping) or not models or not all(isinstance(k, str) for k in models):
        raise TypeError(f"models must be a non-empty dict of name -> model, got {type(models).__name__}")
    nrow = check_positive_int("nrow", nrow)
    weights = {k: _first_layer(k, m) for k, m in models.items()}  # validates every entry up front

    def draw(ax: Axes, model: str) -> Tensor:
        return draw_filters(weights[model], ax, title=model, nrow=nrow)

    def static() -> Figure:
        fig, axes = _row(len(weights), (5.5, 3.6))
        for name, ax in zip(weights, axes):
            draw(ax, name)
            ax.set_xlabel("")
        return fig

    def controls() -> dict[str, Any]:
        import ipywidgets as w
        return {"model": w.ToggleButtons(options=list(weights), description="model")}

    return Explorer(static, controls, draw, figsize=(8.0, 4.8))


# -------------------------------------------------------------------------------- denoising (ch. 3)
def draw_denoising(models: Mapping[str, nn.Module] | nn.Module, x: Tensor, sigma: float, ax: Axes,
                   seed: int = 0) -> dict[str, float]:
    """Draw clean x, noisy x_tilde and each model's reconstruction as labelled rows; return MSEs.

    x: (n, 784) in [0, 1]; sigma: Gaussian noise std. Returns {"noisy": MSE(x_tilde, x), name: MSE(x_hat, x)},
    per-pixel means against the clean x.
    """
    from funml_lib.data import corrupt_gaussian
    from funml_lib.plotting import show_rows

    models = _check_models(models)
    x = check_in_unit_interval("x", check_images("x", x))
    sigma = check_nonnegative("sigma", sigma)
    x_tilde = corrupt_gaussian(x, sigma, seed=seed)
    mse = {"noisy": float((x_tilde - x).pow(2).mean())}
    rows = {"clean x": x, f"noisy (MSE {mse['noisy']:.4f})": x_tilde}
    for name, model in models.items():
        with _evaluating(model):
            out = model(x_tilde.to(_device(model)))
        x_hat = (out[0] if isinstance(out, tuple) else out).to(x.device)
        mse[name] = float((x_hat - x).pow(2).mean())
        rows[f"{name} (MSE {mse[name]:.4f})"] = x_hat
    show_rows(rows, nrow=len(x), title=f"Gaussian noise σ = {sigma:g}", ax=ax)
    return mse


def denoising_explorer(models: Mapping[str, nn.Module] | nn.Module, x: Tensor,
                       sigmas: Sequence[float] = (0.1, 0.3, 0.5, 0.7), n_show: int = 8,
                       seed: int = 0) -> Explorer:
    """Noise-level slider: noisy input vs each model's denoised output; static figure: one block per sigma.

    models: name -> trained denoising autoencoder (or one model); x: (N, 784) clean digits, the first
    n_show are drawn; sigmas: noise levels offered (std of the added Gaussian noise).
    """
    import ipywidgets  # noqa: F401

    models = _check_models(models)
    x = check_in_unit_interval("x", check_images("x", x))[:check_positive_int("n_show", n_show)]
    if isinstance(sigmas, (str, bytes)) or not isinstance(sigmas, Sequence) or not sigmas:
        raise ValueError(f"sigmas must be a non-empty list of noise levels >= 0, got {sigmas!r}")
    sigmas = [check_nonnegative("sigmas", s) for s in sigmas]

    def draw(ax: Axes, sigma: float) -> dict[str, float]:
        return draw_denoising(models, x, sigma, ax, seed=seed)

    def static() -> Figure:
        fig, axes = _row(len(sigmas), (0.6 * len(x) + 2.4, 0.6 * (2 + len(models)) + 0.6), vertical=True)
        for s, ax in zip(sigmas, axes):
            draw(ax, s)
            ax.set_xlabel("")
        return fig

    def controls() -> dict[str, Any]:
        import ipywidgets as w
        return {"sigma": w.SelectionSlider(options=[(f"{s:g}", s) for s in sigmas],
                                           value=sigmas[len(sigmas) // 2], description="σ",
                                           continuous_update=False)}

    return Explorer(static, controls, draw, figsize=(0.6 * len(x) + 2.4, 0.6 * (2 + len(models)) + 1.0))


# ------------------------------------------------------------------------------ 2-d VAE (ch. 5)
def _decode_2d(vae2d: nn.Module, z: Tensor) -> Tensor:
    with _evaluating(vae2d):
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


def latent_explorer(vae2d: nn.Module, z_range: float = 3.0, n_static: int = 9) -> Explorer:
    """z1 / z2 sliders decoding a point of a 2-d VAE live; static figure: walks along z1 and along z2.

    The static walks go through n_static values in [-2, 2] on one axis with the other held at 0
    (the prior N(0, I) puts 95% of its mass within about +-2 per axis).
    """
    import ipywidgets  # noqa: F401
    from funml_lib.plotting import show_rows

    vae2d = _check_vae2d(vae2d)
    z_range = check_positive("z_range", z_range)
    n_static = check_positive_int("n_static", n_static)

    def draw(ax: Axes, z1: float, z2: float) -> np.ndarray:
        return draw_decoded(vae2d, z1, z2, ax)

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

    def controls() -> dict[str, Any]:
        import ipywidgets as w
        return {name: w.FloatSlider(value=0.0, min=-z_range, max=z_range, step=0.1, description=label,
                                    continuous_update=False, readout_format=".1f")
                for name, label in (("z1", "z₁"), ("z2", "z₂"))}

    return Explorer(static, controls, draw, figsize=(3.0, 3.2))
