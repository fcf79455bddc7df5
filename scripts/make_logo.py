"""Draw the book's logo and favicon: an MNIST-style 28x28 digit squeezed through an autoencoder.

Writes book/_static/logo.png (the sidebar logo) and book/_static/favicon.png. The PNGs are committed;
run `.venv/bin/python scripts/make_logo.py` only to change them. Needs matplotlib and numpy only.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Polygon  # noqa: E402

STATIC = Path(__file__).resolve().parents[1] / "book" / "_static"
NAVY, TEAL, INK = "#1f3b57", "#2a9d8f", "#f4f1de"


def digit_raster(char: str = "7", size: int = 28) -> np.ndarray:
    """Render `char` as a size x size grey-level raster in [0, 1], like one MNIST digit."""
    fig = plt.figure(figsize=(1, 1), dpi=size)
    # 60 pt at size dots per inch is about 23 pixels: a digit that fills its 28x28 box as in MNIST
    fig.text(0.5, 0.45, char, fontsize=60, fontweight="bold", ha="center", va="center")
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba(), dtype=np.float32)[..., :3]
    plt.close(fig)
    return 1.0 - rgba.mean(axis=2) / 255.0


def draw(ax: plt.Axes, digit: np.ndarray, with_code: bool) -> None:
    """Input digit -> hourglass (encoder, code, decoder) -> reconstruction, on a rounded tile."""
    ax.add_patch(FancyBboxPatch((0.02, 0.02), 0.96, 0.96, boxstyle="round,pad=0,rounding_size=0.18",
                                transform=ax.transAxes, color=NAVY, zorder=0))
    if with_code:
        ax.imshow(digit, cmap="gray", extent=(0.08, 0.36, 0.30, 0.70), interpolation="nearest", zorder=2)
        ax.add_patch(Polygon([(0.38, 0.76), (0.50, 0.56), (0.50, 0.44), (0.38, 0.24)], color=TEAL))
        ax.add_patch(Polygon([(0.62, 0.76), (0.50, 0.56), (0.50, 0.44), (0.62, 0.24)], color=TEAL, alpha=0.7))
        # the reconstruction is a little blurred, as an autoencoder's is
        blurred = (digit + np.roll(digit, 1, 0) + np.roll(digit, 1, 1) + np.roll(digit, -1, 0)) / 4
        ax.imshow(blurred, cmap="gray", extent=(0.64, 0.92, 0.30, 0.70), interpolation="nearest", zorder=2)
    else:
        ax.imshow(digit, cmap="gray", extent=(0.14, 0.86, 0.14, 0.86), interpolation="nearest", zorder=2)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")


def save(path: Path, width_px: int, height_px: int, with_code: bool) -> None:
    """Write one transparent PNG of the given pixel size."""
    dpi = 100
    fig = plt.figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    draw(ax, digit_raster(), with_code)
    fig.savefig(path, dpi=dpi, transparent=True)
    plt.close(fig)
    print(f"wrote {path} ({width_px}x{height_px})")


if __name__ == "__main__":
    STATIC.mkdir(parents=True, exist_ok=True)
    save(STATIC / "logo.png", 240, 240, with_code=True)
    save(STATIC / "favicon.png", 64, 64, with_code=False)
