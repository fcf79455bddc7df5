"""Live views: the chapter's trained models running in the reader's browser, on the reader's digit.

A live view is the last line of a cell, e.g. `live_denoiser(denoisers, x_test, labels=y_test)`. It
shows a drawing pad, a keyboard picker of a few test digits and the models' outputs, computed in
the page by funml_lib/live.js with the weights the chapter has just trained (compressed: see
funml_lib.live_export, which also states what the compression costs on the page). Where the front
end does not run the output's JavaScript (print, some notebook viewers) one sentence says so, and
the chapter's frame explorer above it stays the way to explore.

- `live_denoiser` (chapter 3): a noise slider, the noisy input and each denoiser's output;
- `live_sparse_code` (chapter 2): each model's code (which units fire, how strongly) and the digit
  rebuilt from its k most active units, as chapter 2's `build_up` does;
- `live_latent` (chapter 5): the 2-d VAE's latent plane with the test codes; drag the point (or use
  the arrow keys) to decode z, and see the drawn digit's q(z|x) as its (mu, sigma) ellipse.
"""
from __future__ import annotations

import html
import math
from typing import Mapping

import torch
from torch import Tensor, nn

from funml_lib._validate import check_fraction, check_seed
from funml_lib.corruptions import corrupt_gaussian
from funml_lib.live_export import (PAGE_BUDGET, LiveView, build_view, check_models, fc_layers, image,
                                   pad, picker, _check_digits, _linears, _raw)
from funml_lib.metrics import evaluating
from funml_lib.models import VAE, FCAutoencoder, SparseAutoencoder

__all__ = ["live_denoiser", "live_latent", "live_sparse_code", "LiveView", "PAGE_BUDGET"]


def _run(model: nn.Module, fn):
    def call(x: Tensor) -> Tensor:
        with evaluating(model):
            return fn(x.to(next(model.parameters()).device)).float().cpu()
    return call


def live_denoiser(models: Mapping[str, FCAutoencoder], digits: Tensor, labels: Tensor | None = None,
                  sigma: float = 0.5, n_digits: int = 10, seed: int = 0, compression: str = "auto",
                  budget_bytes: int = PAGE_BUDGET) -> LiveView:
    """Chapter 3, live: the reader's digit (or a test digit), Gaussian noise of a chosen sigma,
    clipped to [0, 1], and each denoiser's output.

    models: name -> FCAutoencoder (784 -> ... -> 784; a linear one ships as its exact 784 -> code
    -> 784 composition); digits: (N, 784) test digits in [0, 1], the first n_digits (one per class
    when labels are given) can be picked; sigma in [0, 1]: the slider's first position; seed: the
    noise of the page's first pattern (the page's own generator, not torch's).
    """
    models = check_models("models", models, FCAutoencoder, 4)
    sigma = check_fraction("sigma", sigma)
    seed = check_seed("seed", seed)
    x, y = _check_digits(digits, labels, n_digits)
    noisy = corrupt_gaussian(x[:1], sigma, seed=seed)
    layers = {name: fc_layers(m) for name, m in models.items()}
    float_fns = {name: _run(m, m) for name, m in models.items()}
    inputs = {name: torch.cat([x[:2], noisy]) for name in models}
    body = (picker(y, len(x)).replace(
        "</div>", '<label>noise σ <input type="range" class="funml-live-noise" min="0" max="1" '
        f'step="0.05" value="{sigma:g}"><output class="funml-live-noise-value">{sigma:.2f}</output>'
        '</label><button type="button" class="funml-live-reseed">new noise</button></div>', 1)
        + '<div class="funml-live-panels">' + pad() + image("noisy", "noisy input x̃")
        + "".join(image(n, f"{n} denoiser") for n in models) + "</div>")
    return build_view("denoiser", "Live denoisers: draw a digit, add noise, see each model's output",
                      layers, float_fns, inputs, x, y, {"sigma": sigma, "seed": seed % 2**32}, body,
                      compression, budget_bytes,
                      fallback="the explorer above shows the same denoisers on test digits")


def live_sparse_code(models: Mapping[str, SparseAutoencoder], digits: Tensor, labels: Tensor | None = None,
                     k: int = 8, n_digits: int = 10, compression: str = "auto",
                     budget_bytes: int = PAGE_BUDGET) -> LiveView:
    """Chapter 2, live: each model's sigmoid code of the reader's digit (one bar per unit) and the
    digit rebuilt from its k most active units, the others set to 0 (chapter 2's `build_up`).

    models: name -> SparseAutoencoder (e.g. the plain AE and a KL model); digits: (N, 784) in [0, 1];
    k: parts kept at first, an int in [1, the smallest hidden_dim].
    """
    models = check_models("models", models, SparseAutoencoder, 3)
    hidden = min(m.hidden_dim for m in models.values())
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= hidden:
        raise ValueError(f"k must be an int in [1, {hidden}] (the smallest hidden_dim), got {k!r}")
    x, y = _check_digits(digits, labels, n_digits)
    layers, float_fns, inputs, pairs, blocks = {}, {}, {}, [], []
    for label, m in models.items():
        enc, dec = f"{label} encoder", f"{label} decoder"
        layers[enc], layers[dec] = _linears(m.encoder, "keep"), _linears(m.decoder, "keep")
        float_fns[enc], float_fns[dec] = _run(m, m.encode), _run(m, m.decode)
        z = float_fns[enc](x[:1])
        keep = torch.zeros_like(z).scatter_(1, z.argsort(dim=1, descending=True)[:, :k], 1.0)
        inputs[enc], inputs[dec] = x[:2], torch.cat([z, z * keep])
        pairs.append({"label": label, "encoder": enc, "decoder": dec, "hidden": m.hidden_dim})
        name = html.escape(label)
        blocks.append(f'<div class="funml-live-model"><figure><canvas class="funml-live-code" '
                      f'width="{2 * m.hidden_dim}" height="64" role="img" aria-label="code of {name}"></canvas>'
                      f'<figcaption><b>{name}</b>: the activation (0 to 1) of each of its {m.hidden_dim} '
                      'units; red: the k most active</figcaption></figure>'
                      + image(f"{label} top-k", "from the top k units", f"{label}: the digit from its top k units")
                      + image(f"{label} all units", f"from all {m.hidden_dim} units",
                              f"{label}: the digit from all {m.hidden_dim} units") + "</div>")
    body = (picker(y, len(x)).replace(
        "</div>", f'<label>parts kept k <input type="range" class="funml-live-k" min="1" max="{hidden}" '
        f'step="1" value="{k}"><output class="funml-live-k-value">{k}</output></label></div>', 1)
        + '<div class="funml-live-panels">' + pad() + "</div>"
        + '<div class="funml-live-models">' + "".join(blocks) + "</div>")
    return build_view("sparse", "Live sparse codes: draw a digit and see which units fire",
                      layers, float_fns, inputs, x, y, {"pairs": pairs, "k": k}, body, compression,
                      budget_bytes, fallback="the figures above remain")


def live_latent(vae_2d: VAE, digits: Tensor, labels: Tensor | None = None, n_points: int = 500,
                n_digits: int = 10, compression: str = "auto", budget_bytes: int = PAGE_BUDGET) -> LiveView:
    """Chapter 5, live: drag z = (z1, z2) over the plane of the test codes (mu of q(z|x) of the first
    n_points digits, coloured by label) and see G_phi(z); a drawn digit shows as its (mu, sigma)
    ellipse (1 and 2 standard deviations).

    vae_2d: a funml_lib VAE with latent_dim=2; digits: (N, 784) in [0, 1]; n_points in [1, 2000].
    """
    if not isinstance(vae_2d, VAE) or vae_2d.latent_dim != 2:
        raise ValueError("vae_2d must be a funml_lib VAE with latent_dim=2, got "
                         + (f"latent_dim={vae_2d.latent_dim}" if isinstance(vae_2d, VAE)
                            else type(vae_2d).__name__))
    check_models("vae_2d", {"vae_2d": vae_2d}, VAE, 1)
    if isinstance(n_points, bool) or not isinstance(n_points, int) or not 1 <= n_points <= 2000:
        raise ValueError(f"n_points must be an int in [1, 2000], got {n_points!r}")
    x, y = _check_digits(digits, labels, n_digits)
    m = vae_2d
    heads = (torch.cat([m.to_mu.weight, m.to_logvar.weight]), torch.cat([m.to_mu.bias, m.to_logvar.bias]))
    layers = {"encoder": [(m.encoder_hidden.weight.detach().float().cpu(),
                           m.encoder_hidden.bias.detach().float().cpu(), "relu"),
                          (heads[0].detach().float().cpu(), heads[1].detach().float().cpu(), "none")],
              "decoder": [(m.decoder_hidden.weight.detach().float().cpu(),
                           m.decoder_hidden.bias.detach().float().cpu(), "relu"),
                          (m.to_logits.weight.detach().float().cpu(),
                           m.to_logits.bias.detach().float().cpu(), "sigmoid")]}
    float_fns = {"encoder": _run(m, lambda v: torch.cat(m.encode(v), dim=1)), "decoder": _run(m, m.decode)}
    mu = float_fns["encoder"](digits[:n_points].detach().float())[:, :2]  # the scatter's codes
    inputs = {"encoder": x[:2], "decoder": torch.tensor([[0.0, 0.0], [1.0, -1.0], mu[0].tolist()])}
    extent = max(3.0, math.ceil(2 * float(mu.abs().quantile(0.99))) / 2)
    scatter_labels = labels[:n_points].cpu().tolist() if labels is not None else None
    extra = {"range": extent, "scatter": {"z": _raw("[" + ",".join(f"{v:.2f}" for v in mu.reshape(-1).tolist())
                                                   + "]"), "labels": scatter_labels}}
    legend = (f'<span class="funml-live-legend">dots: μ of q<sub>θ</sub>(z|x) for {len(mu)} test digits, by '
              'label '
              + "".join(f'<span class="funml-live-key"><span class="funml-live-swatch funml-live-c{c}"></span>'
                        f'{c}</span>' for c in range(10)) + "</span>") if scatter_labels is not None else ""
    body = (picker(y, len(x)) + '<div class="funml-live-panels">' + pad()
            # before the plane: in view while dragging on a phone
            + image("decoded", "decoded G_phi(z)", "the digit decoded from z",
                    caption_html="decoded G<sub>φ</sub>(z)")
            + '<figure><canvas class="funml-live-plane" width="300" height="300" tabindex="0" '
            'role="application" aria-roledescription="latent plane" aria-label="Latent plane of the test '
            'codes: drag the point or use the arrow keys (Shift for larger steps) to move z"></canvas>'
            '<figcaption>drag to move z (or focus the plane and use the arrow keys); z₁ across, z₂ up, '
            f'each from −{extent:g} to {extent:g}{legend}</figcaption></figure>'
            "</div>")
    return build_view("latent", "Live 2-d VAE: move z in the latent plane, or draw a digit to encode",
                      layers, float_fns, inputs, x, y, extra, body, compression, budget_bytes,
                      fallback="the sliders above decode a grid of z with the same VAE")
