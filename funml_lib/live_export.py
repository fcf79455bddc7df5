"""The machinery behind funml_lib.live: compressed weights, reference outputs and the view's HTML.

A live view carries the weights of small dense models (a list of (weight, bias, activation)
layers) and the runtime funml_lib/live.js, inlined, so the page needs no server and no request.

Weights are shipped compressed: float16, or 8 bits per weight with one float32 scale per output row
(w ~= q * scale, q an int in [-127, 127], scale = max |row| / 127), biases as float32, all base64.
`compression="auto"` keeps float16 where the page stays within `budget_bytes` and otherwise moves
models to 8 bits, the largest first, until the page fits (in an 8-bit model the layers with fewer
than INT8_MIN_WEIGHTS weights, e.g. the VAE's (mu, logvar) head, stay float16: they cost little).
The reference outputs embedded in the page are computed in torch with the dequantized weights, and
the view measures (and states) how far the compressed model is from the float32 one on those
inputs: the cost of compression.

The page's side (funml_lib/live.js) publishes each view on window.funmlLive for the site check:
{root, kind, ready, run(name, input), reference, tolerance, quantization, state(), lastUpdateMs,
bytes}; `bytes` counts the UTF-8 bytes of the data script and of the runtime, as `LiveView.bytes`.
"""
from __future__ import annotations

import base64
import html
import json
import math
import secrets
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from funml_lib._validate import (check_choice, check_images, check_in_unit_interval, check_model_finite,
                                 check_positive_int)

PAGE_BUDGET = 1_000_000   # bytes of weights + code one page may carry (issue 24)
TOLERANCE = 2e-3          # max |browser - torch| per output value the site check allows
INT8_MIN_WEIGHTS = 4096   # smaller layers stay float16 in "auto": they cost little, and heads matter
MAX_DIGITS = 20           # test digits offered by the keyboard picker
RUNTIME = Path(__file__).with_name("live.js")
Layer = tuple[Tensor, Tensor, str]  # weight (out, in) float32, bias (out,), activation name


# ------------------------------------------------------------------------ compression of weights
def quantize_rows(w: Tensor) -> tuple[Tensor, Tensor]:
    """8-bit weights with one scale per output row: w (out, in) -> q int8 (out, in), scale (out,).

    scale_i = max_j |w_ij| / 127 (1 for an all-zero row), q_ij = round(w_ij / scale_i), so the
    round trip q * scale is off by at most scale_i / 2 per weight.
    """
    w = w.detach().float().cpu()
    scale = w.abs().amax(dim=1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


def dequantize_rows(q: Tensor, scale: Tensor) -> Tensor:
    """The float32 weights the browser uses: q (out, in) int8 times scale (out,) per row."""
    return q.float() * scale.float()[:, None]


def _b64(a: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
                            ).decode("ascii")


def _pack(layers: list[Layer], int8: set[int]) -> tuple[list[dict], list[Layer]]:
    """JSON description of `layers` (those numbered in `int8` in 8 bits, the others in float16) and
    the dequantized layers torch uses for the references."""
    specs, used = [], []
    for i, (w, b, act) in enumerate(layers):
        w, b = w.detach().float().cpu(), b.detach().float().cpu()
        spec = {"nin": w.shape[1], "nout": w.shape[0], "act": act, "b": _b64(b.numpy(), "f4")}
        if i in int8:
            q, scale = quantize_rows(w)
            spec.update(wtype="int8", w=_b64(q.numpy(), "i1"), scale=_b64(scale.numpy(), "f4"))
            w = dequantize_rows(q, scale)
        else:
            spec.update(wtype="float16", w=_b64(w.numpy(), "f2"))
            w = w.half().float()
        specs.append(spec)
        used.append((w, b, act))
    return specs, used


def run_layers(layers: list[Layer], x: Tensor) -> Tensor:
    """What the browser computes: dense layers with ReLU / sigmoid / no activation, x (N, in)."""
    for w, b, act in layers:
        x = x @ w.T + b
        x = torch.relu(x) if act == "relu" else torch.sigmoid(x) if act == "sigmoid" else x
    return x


# ---------------------------------------------------------------------- reading the models' layers
def _linears(seq: nn.Module, last: str) -> list[Layer]:
    """(weight, bias, activation) of each Linear in a Sequential; ReLU inside, `last` at the end."""
    mods = list(seq)
    out = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.Linear):
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            act = "relu" if isinstance(nxt, nn.ReLU) else "sigmoid" if isinstance(nxt, nn.Sigmoid) else "none"
            out.append((m.weight.detach().float().cpu(), m.bias.detach().float().cpu(), act))
    if out and last != "keep":
        out[-1] = (*out[-1][:2], last)
    return out


def _compose(layers: list[Layer]) -> Layer:
    """One affine layer equal to a stack of affine ones: W = W_k ... W_1 (in float64), b likewise."""
    w, b = layers[0][0].double(), layers[0][1].double()
    for wi, bi, _ in layers[1:]:
        w, b = wi.double() @ w, wi.double() @ b + bi.double()
    return w.float(), b.float(), "none"


def fc_layers(model: nn.Module) -> list[Layer]:
    """The dense layers of an FCAutoencoder; a linear one as its exact composition 784 -> code -> 784."""
    enc, dec = _linears(model.encoder, "keep"), _linears(model.decoder, "keep")
    if not model.config.get("nonlinear", True):
        return [_compose(enc), _compose(dec)]
    return enc + dec


# ---------------------------------------------------------------------------------- the view
def _num(v: float) -> str:
    s = f"{v:.5f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _json_for_html(obj: object) -> str:
    """JSON that cannot end its <script> early: <, > and & are written as \\u escapes."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _Raw:
    """A pre-formatted JSON number list (compact: 5 decimals) that _dump inserts as it is."""

    def __init__(self, text: str):
        self.text = text


def _raw(text: str) -> _Raw:
    return _Raw(text)


def _dump(obj: dict) -> str:
    # number lists go in as compact text, everything else through json; the placeholders carry a
    # random token, so no string of the caller (a model's name) can be mistaken for one
    token, raws = secrets.token_hex(8), []

    def walk(o):
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        if isinstance(o, _Raw):
            raws.append(o.text)
            return f"{token}{len(raws) - 1}"
        return o

    text = _json_for_html(walk(obj))
    for i, r in enumerate(raws):
        text = text.replace(f'"{token}{i}"', r, 1)
    return text


def _numbers(t: Tensor) -> str:
    return _raw("[" + ",".join(_num(float(v)) for v in t.reshape(-1).tolist()) + "]")


class LiveView:
    """One live view: `html` (the cell output), `bytes` (weights data + runtime code), `quantization`
    ({model: max |float32 - compressed| on the reference inputs}), `compression` ({model: "int8" or
    "float16"}) and `note` (the sentence the page shows about them)."""

    def __init__(self, kind: str, html_text: str, nbytes: int, quantization: dict[str, float],
                 compression: dict[str, str], note: str):
        self.kind, self.html, self.bytes = kind, html_text, nbytes
        self.quantization, self.compression, self.note = quantization, compression, note

    def __repr__(self) -> str:
        worst = max(self.quantization.values())
        return (f"live {self.kind} view: {len(self.quantization)} models, {self.bytes:,} bytes of weights "
                f"and code, compression costs at most {worst:.2g} per output value")

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        return {"text/html": self.html, "text/plain": repr(self)}


def _check_digits(digits: object, labels: object, n_digits: int) -> tuple[Tensor, list[int] | None]:
    """The first test digit of each class (in class order) when labels are given, else the first ones."""
    x = check_in_unit_interval("digits", check_images("digits", digits)).detach().float().cpu()
    if not isinstance(n_digits, int) or isinstance(n_digits, bool) or not 1 <= n_digits <= MAX_DIGITS:
        raise ValueError(f"n_digits must be an int in [1, {MAX_DIGITS}], got {n_digits!r}")
    if labels is None:
        return x[:n_digits], None
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != x.shape[0] \
            or labels.is_floating_point():
        raise ValueError(f"labels must be an integer tensor of shape ({x.shape[0]},), one per digit, got "
                         f"{type(labels).__name__}{tuple(labels.shape) if isinstance(labels, Tensor) else ''}")
    y = labels.detach().cpu()
    if y.numel() and (int(y.min()) < 0 or int(y.max()) > 9):  # the page colours and names digits 0..9
        raise ValueError(f"labels must hold digit labels in 0..9, got values in [{int(y.min())}, {int(y.max())}]")
    picks: list[int] = []
    while len(picks) < min(n_digits, len(x)):  # round-robin over the classes: 0, 1, ..., 9, 0, ...
        added = False
        for c in sorted(set(y.tolist())):
            rest = [int(i) for i in (y == c).nonzero().flatten() if int(i) not in picks]
            if rest and len(picks) < n_digits:
                picks.append(rest[0])
                added = True
        if not added:
            break
    return x[picks], [int(y[i]) for i in picks]


def build_view(kind: str, label: str, models: dict[str, list[Layer]],
               float_fns: dict[str, Callable[[Tensor], Tensor]], inputs: dict[str, Tensor],
               digits: Tensor, digit_labels: list[int] | None, extra: dict, body: str,
               compression: str, budget_bytes: int,
               fallback: str = "the explorer above shows the same models on test digits") -> LiveView:
    """Pack `models`, compute the references and the compression cost, and wrap it all in HTML.
    `fallback` ends the sentence shown where the view's JavaScript does not run: what on the page
    above remains to explore."""
    compression = check_choice("compression", compression, ("auto", "int8", "float16"))
    budget_bytes = check_positive_int("budget_bytes", budget_bytes)
    runtime = RUNTIME.read_text(encoding="utf-8")
    big = {name: {i for i, (w, _, _) in enumerate(layers) if w.numel() >= INT8_MIN_WEIGHTS}
           for name, layers in models.items()}
    # "auto" moves whole models to 8 bits, the largest first, so one model never mixes two sizes
    order = sorted(models, key=lambda n: -sum(models[n][i][0].numel() for i in big[n]))
    tries = {"auto": range(len(order) + 1), "int8": [len(order)], "float16": [0]}[compression]
    for n_int8 in tries:
        packed = {name: _pack(layers, big[name] if name in order[:n_int8] else set())
                  for name, layers in models.items()}
        reference, cost = [], {}
        for name, x in inputs.items():
            x = torch.tensor([[float(_num(v)) for v in row] for row in x.tolist()])  # as the page has it
            y = run_layers(packed[name][1], x)
            cost[name] = float((y - float_fns[name](x)).abs().max())
            reference += [{"model": name, "input": _numbers(xi), "output": _numbers(yi)}
                          for xi, yi in zip(x, y)]
        bad = [n for n, c in cost.items() if not math.isfinite(c)]
        if bad:  # e.g. a weight beyond float16's range (65504) becomes inf on the page
            raise ValueError(f"models {bad}: the compressed weights give non-finite outputs (a weight too "
                             f"large for float16, |w| > 65504, or for 8 bits?); compression={compression!r} "
                             "cannot ship them")
        kinds = {n: "+".join(sorted({s["wtype"] for s in p[0]})) for n, p in packed.items()}
        data = {"kind": kind, "tolerance": TOLERANCE, "quantization": cost, "compression": kinds,
                "models": {n: {"layers": p[0]} for n, p in packed.items()},
                "digits": {"n": len(digits), "labels": digit_labels,
                           "data": _b64(np.round(digits.numpy() * 255), "u1")},
                "reference": reference, **extra}
        text = _dump(data)
        nbytes = len(text.encode("utf-8")) + len(runtime.encode("utf-8"))
        if nbytes <= budget_bytes:
            break
    else:
        raise ValueError(f"budget_bytes: this view needs {nbytes:,} bytes of weights and code with "
                         f"compression={compression!r}, over budget_bytes = {budget_bytes:,}; give it "
                         "fewer models, fewer digits, 8-bit weights or a larger budget")
    words = {"int8": "8 bits per weight with a scale per row", "float16": "16-bit floats",
             "float16+int8": "8 bits per weight with a scale per row in the large layers, 16-bit "
                             "floats in the small ones"}
    groups = {k: [n for n in kinds if kinds[n] == k] for k in dict.fromkeys(kinds.values())}
    how = "; ".join(f"{' and '.join(ns)}: {words[k]}" for k, ns in groups.items())
    worst = ", ".join(f"{cost[n]:.2g} ({n})" for n in cost)
    note = (f"The weights travel with this page ({nbytes / 1000:,.0f} kB with the code; {how}). "
            f"Compared with the float32 models in torch, the compression changes an output value by at "
            f"most {worst} on the reference inputs; your browser reproduces torch's outputs on them "
            f"within {TOLERANCE:g}.")
    page = (f'<div class="funml-live" data-funml-kind="{kind}" role="group" aria-label="{html.escape(label)}">'
            '<p class="funml-live-fallback">This live view runs in JavaScript, which is off or not run '
            f'here; {html.escape(fallback)}.</p>'
            f'<div class="funml-live-ui" hidden>{body}<p class="funml-live-summary" aria-live="polite"></p>'
            f'</div><p class="funml-live-note">{html.escape(note)}</p>'
            f'<script type="application/json" class="funml-live-data">{text}</script>'
            f'<script>{runtime}</script></div>')
    return LiveView(kind, page, nbytes, cost, kinds, note)


# --------------------------------------------------------------------------- HTML building blocks
def picker(digits_labels: list[int] | None, n: int) -> str:
    """The drawing pad, the keyboard digit picker and the Clear button."""
    opts = "".join(f'<option value="{i}">test digit {i + 1}'
                   f'{f" (a {digits_labels[i]})" if digits_labels else ""}</option>' for i in range(n))
    return ('<div class="funml-live-controls"><label>Start from '
            f'<select class="funml-live-digits">{opts}</select></label>'
            '<button type="button" class="funml-live-clear">Clear the pad</button></div>')


def pad() -> str:
    return ('<figure><canvas class="funml-live-pad" width="280" height="280" aria-label="Drawing pad: '
            'draw a digit with the mouse, a finger or a pen; the outputs update as you draw"></canvas>'
            '<figcaption>draw here (your first stroke clears the test digit)</figcaption></figure>'
            + image("input", "the models' 28 × 28 input"))


def image(name: str, caption: str, alt: str | None = None, caption_html: str | None = None) -> str:
    """A 28 x 28 output canvas (shown 4x, pixelated) named `name` for state(), with its caption
    (plain text, escaped; `caption_html`, trusted markup such as G<sub>φ</sub>, replaces it on screen)."""
    return (f'<figure><canvas class="funml-live-out" data-funml-output="{html.escape(name)}" width="28" '
            f'height="28" role="img" aria-label="{html.escape(alt or caption)}"></canvas>'
            f'<figcaption>{caption_html or html.escape(caption)}</figcaption></figure>')


def check_models(name: str, models: object, cls: type, limit: int) -> dict[str, nn.Module]:
    """A non-empty dict of at most `limit` str -> `cls` with finite weights."""
    if isinstance(models, cls):
        models = {type(models).__name__: models}
    if not isinstance(models, Mapping) or not 1 <= len(models) <= limit or not all(
            isinstance(k, str) and isinstance(v, cls) for k, v in models.items()):
        raise TypeError(f"{name} must be a dict of 1 to {limit} name -> {cls.__name__}, got "
                        f"{type(models).__name__}{f' of {len(models)}' if isinstance(models, Mapping) else ''}")
    for k, m in models.items():
        check_model_finite(f"{name}[{k!r}]", m)
        dtypes = {p.dtype for p in m.parameters()}
        if dtypes != {torch.float32}:  # the views run the models on float32 digits
            raise TypeError(f"{name}[{k!r}] has {', '.join(sorted(map(str, dtypes)))} parameters; a live view "
                            "needs float32 ones: convert it with model.float()")
    return dict(models)

