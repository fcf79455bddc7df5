"""The lecture's figures: digit grids, input/reconstruction rows, filter grids, latent scatter,
the 2-d manifold, training curves and the KL sparsity curve.

Every function takes tensors on any device (they are copied to the CPU here), draws on `ax` when one is
given (else on a new figure) and returns the matplotlib Figure. In a notebook end the call with `;` or
assign the result (`fig = show_images(x)`): a returned Figure on the last line is otherwise shown twice.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor
from torchvision.utils import make_grid

from funml_lib._validate import (check_finite, check_positive_int, check_probability_open, check_tensor)
from funml_lib.losses import kl_sparsity

SIDE = 28  # MNIST digits are 28 x 28 pixels
PAD = 2  # pixels between tiles in every grid


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        return plt.subplots(figsize=figsize, layout="constrained")  # keeps long row labels in the figure
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be None or a matplotlib Axes, got {type(ax).__name__}")
    return ax.figure, ax


def _check_title(title: object) -> None:
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be None or a str, got {type(title).__name__}")


def _digits(name: str, x: object) -> Tensor:
    """(N, 784), (N, 28, 28) or (N, 1, 28, 28) tensor on any device -> (N, 1, 28, 28) float on the CPU."""
    check_tensor(name, x)
    if x.numel() == 0 or x.shape[0] == 0 or x[0].numel() != SIDE * SIDE:
        raise ValueError(f"{name} must have shape (N, 784), (N, 28, 28) or (N, 1, 28, 28) with N >= 1, "
                         f"got {tuple(x.shape)}")
    x = x.detach().float().cpu()
    check_finite(name, x)
    return x.reshape(-1, 1, SIDE, SIDE)


def _grid_image(tiles: Tensor, nrow: int, pad_value: float = 1.0) -> Tensor:
    """(M, 1, 28, 28) tiles -> one (H, W) image, `nrow` tiles per line, white lines between tiles."""
    return make_grid(tiles, nrow=nrow, padding=PAD, pad_value=pad_value)[0]


def _imshow(ax: Axes, image: Tensor) -> None:
    """A grayscale image in [0, 1], upscaled nearest-neighbour (no smoothing between pixels, which keeps
    digits sharp and the saved PNG small)."""
    ax.imshow(image.numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")


def _hide_ticks(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def show_images(x: Tensor, nrow: int = 10, title: str | None = None, ax: Axes | None = None) -> Figure:
    """Show digits as one grid, `nrow` per line, black background, white ink.

    x: (N, 784) (or (N, 28, 28), (N, 1, 28, 28)) pixel intensities; values outside [0, 1] are clipped.
    """
    x = _digits("x", x)
    nrow = check_positive_int("nrow", nrow)
    _check_title(title)
    lines = -(-len(x) // nrow)
    fig, ax = _axes(ax, (min(nrow, len(x)) * 0.6 + 0.6, lines * 0.6 + 0.8))
    _imshow(ax, _grid_image(x, nrow))
    _hide_ticks(ax)
    ax.set_title(title if title is not None else f"{len(x)} digits")
    ax.set_xlabel(f"{nrow} digits per line")
    return fig


def show_rows(rows: Mapping[str, Tensor], nrow: int = 10, title: str | None = None,
              ax: Axes | None = None) -> Figure:
    """Show one labelled line of digits per entry, e.g. {"input": x, "reconstruction": x_hat}.

    rows: label -> (N, 784) tensor; the first `nrow` digits of each are drawn, so the same column shows
    the same digit in every line (the lecture's input upper / reconstruction bottom figures).
    """
    if not isinstance(rows, Mapping) or not rows:
        raise ValueError(f"rows must be a non-empty dict of label -> (N, 784) tensor, got {rows!r:.60}")
    nrow = check_positive_int("nrow", nrow)
    _check_title(title)
    tiles = []
    for label, x in rows.items():
        x = _digits(f"rows[{label!r}]", x)[:nrow]
        blank = torch.ones(nrow - len(x), 1, SIDE, SIDE)  # a short line is padded with white tiles
        tiles.append(torch.cat([x, blank]))
    image = _grid_image(torch.cat(tiles), nrow)
    fig, ax = _axes(ax, (nrow * 0.6 + 1.6, len(rows) * 0.6 + 0.8))
    _imshow(ax, image)
    ax.set_xticks([])
    ax.set_yticks([PAD + i * (SIDE + PAD) + SIDE / 2 for i in range(len(rows))], list(rows))
    ax.tick_params(axis="y", length=0)
    ax.set_title(title if title is not None else " / ".join(rows))
    ax.set_xlabel(f"the same {nrow} digits in every line")
    return fig


def filter_grid(W1: Tensor, nrow: int = 16) -> Tensor:
    """The rows of W1 (hidden, 784) as one (H, W) image of 28x28 tiles in [0, 1], `nrow` per line.

    Each tile is scaled to its own range, (w - min w) / (max w - min w): black = the unit's most negative
    weight, white = its most positive, so filters of different norm are equally visible.
    """
    check_tensor("W1", W1)
    if W1.dim() != 2 or W1.shape[0] == 0 or W1.shape[1] != SIDE * SIDE:
        raise ValueError(f"W1 must have shape (hidden, 784) with hidden >= 1, got {tuple(W1.shape)}")
    nrow = check_positive_int("nrow", nrow)
    w = check_finite("W1", W1.detach().float().cpu())
    lo, hi = w.min(1, keepdim=True).values, w.max(1, keepdim=True).values
    w = (w - lo) / (hi - lo).clamp_min(1e-12)  # a constant row becomes black instead of NaN
    return _grid_image(w.reshape(-1, 1, SIDE, SIDE), nrow)


def plot_filters(W1: Tensor, nrow: int = 16, title: str | None = None, ax: Axes | None = None) -> Figure:
    """Show each row of the first-layer weight W1 (hidden, 784) as a 28x28 filter tile, `nrow` per line.

    The tiles are `filter_grid(W1, nrow)`, each scaled to its own range (black = most negative weight,
    white = most positive), drawn with nearest-neighbour upscaling: sharp pixels and a small PNG.
    128 units with nrow=16 give 8 lines of 16 tiles.
    """
    image = filter_grid(W1, nrow)
    _check_title(title)
    n = W1.shape[0]
    lines = -(-n // nrow)
    # about one figure pixel per weight at 100 dpi: nearest-neighbour drawing stays sharp and light
    fig, ax = _axes(ax, (min(nrow, n) * 0.3 + 1.2, lines * 0.3 + 1.3))
    _imshow(ax, image)
    _hide_ticks(ax)
    ax.set_title(title if title is not None else f"first-layer filters W1: {n} units, 28x28 each")
    ax.set_xlabel("each tile scaled to its own range\n(black = most negative, white = most positive weight)")
    return fig


def plot_latent_scatter(z: Tensor, y: Tensor, title: str | None = None, ax: Axes | None = None) -> Figure:
    """Scatter 2-d codes z (N, 2) coloured by digit label y (N,) in 0..9, with a legend."""
    check_tensor("z", z)
    check_tensor("y", y)
    if z.dim() != 2 or z.shape[1] != 2 or z.shape[0] == 0:
        raise ValueError(f"z must have shape (N, 2) with N >= 1 (a 2-d latent space), got {tuple(z.shape)}")
    if y.shape != (z.shape[0],):
        raise ValueError(f"y must have shape (N,) = ({z.shape[0]},) to match z, got {tuple(y.shape)}")
    _check_title(title)
    z = check_finite("z", z.detach().float().cpu())
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:  # .long() would truncate 2.7 to 2
        raise TypeError(f"y must be an integer tensor of digit labels in 0..9, got dtype {y.dtype}")
    y = y.detach().cpu().long()
    if bool(((y < 0) | (y > 9)).any()):
        raise ValueError(f"y must hold digit labels in 0..9, got values in [{int(y.min())}, {int(y.max())}]")
    fig, ax = _axes(ax, (6.0, 5.0))
    colors = plt.get_cmap("tab10")
    size = 12 if len(z) <= 2000 else 4
    for digit in range(10):
        pts = z[y == digit]
        if len(pts):
            ax.scatter(pts[:, 0].numpy(), pts[:, 1].numpy(), s=size, color=colors(digit), alpha=0.7,
                       label=str(digit), linewidths=0)
    ax.legend(title="digit", markerscale=2.5, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title if title is not None else f"latent codes of {len(z)} digits")
    return fig


def _module_device(decode: Callable) -> torch.device:
    owner = getattr(decode, "__self__", None)  # a bound method such as model.decode
    if isinstance(owner, torch.nn.Module):
        for p in owner.parameters():
            return p.device
    return torch.device("cpu")


def plot_manifold(decode: Callable[[Tensor], Tensor], n: int = 20, title: str | None = None,
                  ax: Axes | None = None, device: torch.device | str | None = None) -> Figure:
    """Decode an n x n grid of 2-d codes and show the digits as one image (the "MNIST manifold").

    The grid values are Gaussian quantiles g = Phi^{-1}(linspace(0.05, 0.95, n)) (Phi = standard normal
    CDF), so the tiles cover p(z) = N(0, I) evenly in probability. decode: (n*n, 2) codes -> (n*n, 784)
    pixel means; called once, without gradients, with z[i * n + j] = (g[j], g[i]) on `device`
    (None: the device of decode's module for a bound method like model.decode, else the CPU).
    z1 grows to the right and z2 upwards.
    """
    if not callable(decode):
        raise TypeError(f"decode must be callable (e.g. model.decode), got {type(decode).__name__}")
    n = check_positive_int("n", n)
    if n < 2:
        raise ValueError(f"n must be an int >= 2 (tiles per side), got {n}")
    _check_title(title)
    device = _module_device(decode) if device is None else torch.device(device)
    g = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))
    z2, z1 = torch.meshgrid(g, g, indexing="ij")
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)
    with torch.no_grad():
        x = decode(z.to(device))
    if not isinstance(x, Tensor) or tuple(x.shape) != (n * n, SIDE * SIDE):
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"decode must return a tensor of shape (n*n, 784) = ({n * n}, 784), got {got}")
    tiles = _digits("decode(z)", x).reshape(n, n, 1, SIDE, SIDE).flip(0)  # first image line = largest z2
    fig, ax = _axes(ax, (7.0, 7.0))
    _imshow(ax, _grid_image(tiles.reshape(-1, 1, SIDE, SIDE), n))
    centres = [PAD + i * (SIDE + PAD) + SIDE / 2 for i in range(n)]
    shown = sorted({round(i * (n - 1) / 4) for i in range(5)})  # five labelled ticks, both ends included
    ax.set_xticks([centres[i] for i in shown], [f"{float(g[i]):.2f}" for i in shown])
    ax.set_yticks([centres[i] for i in shown], [f"{float(g[n - 1 - i]):.2f}" for i in shown])
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title if title is not None else f"decoded digits on a {n}x{n} grid of z (5%..95% quantiles)")
    return fig


def plot_history(history: Mapping[str, Sequence[float]], keys: Sequence[str] | None = None,
                 title: str | None = None, ax: Axes | None = None) -> Figure:
    """Plot per-epoch means of loss terms (a History from fit, or any dict key -> list), one curve per key."""
    if not isinstance(history, Mapping) or not history:
        raise ValueError("history must be a non-empty dict of term -> per-epoch values, e.g. fit(...)'s result")
    _check_title(title)
    if keys is None:
        keys = list(history)
    elif isinstance(keys, str) or not all(k in history for k in keys) or not keys:
        raise ValueError(f"keys must be a non-empty list of names from {list(history)}, got {keys!r}")
    fig, ax = _axes(ax, (6.0, 4.0))
    for k in keys:
        try:
            values = [float(v) for v in history[k]]
        except (TypeError, ValueError):
            raise TypeError(f"history[{k!r}] must be a list of numbers, one per epoch, "
                            f"got {str(history[k])[:40]}") from None
        bad = [i + 1 for i, v in enumerate(values) if not math.isfinite(v)]
        if bad:  # a NaN would be a silent gap in the curve
            raise ValueError(f"history[{k!r}] must hold finite numbers, got NaN or infinity at epoch(s) "
                             f"{', '.join(map(str, bad[:5]))} (did training diverge? try a smaller lr)")
        ax.plot(range(1, len(values) + 1), values, marker="o" if len(values) <= 30 else None,
                markersize=3, label=k)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean over the epoch")
    ax.legend()
    ax.set_title(title if title is not None else "training history")
    return fig


def plot_kl_sparsity_curve(rho: float = 0.05, ax: Axes | None = None) -> Figure:
    """Plot KL(rho || rho_hat) for rho_hat in (0, 1) with a marker at its minimum 0 at rho_hat = rho.

    KL(rho || rho_hat) = rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)), in nats.
    The y axis stops at 2.5 nats so the minimum stays visible next to the steep rise towards 1.
    """
    rho = check_probability_open("rho", rho)
    fig, ax = _axes(ax, (6.0, 4.0))
    rho_hat = torch.linspace(0.001, 0.999, 999)
    kl = kl_sparsity(rho, rho_hat)
    ax.plot(rho_hat.numpy(), kl.numpy(), label=rf"KL($\rho$ = {rho:g} $\|$ $\hat\rho$)")
    ax.plot([rho], [0.0], "o", color="C3", label=rf"minimum 0 at $\hat\rho$ = $\rho$ = {rho:g}")
    ax.set_ylim(-0.05, min(2.5, float(kl.max()) * 1.05))
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(r"$\hat\rho$ (mean activation of a hidden unit)")
    ax.set_ylabel("KL divergence (nats)")
    ax.set_title(rf"sparsity penalty KL($\rho$ $\|$ $\hat\rho$) for $\rho$ = {rho:g}")
    ax.legend()
    return fig
