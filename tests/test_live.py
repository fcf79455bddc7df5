"""funml_lib.live: compressed weights, reference outputs, the HTML of a live view, and the runtime
funml_lib/live.js itself, run in Node on the exported weights and compared with torch."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
import torch

from funml_lib import VAE, FCAutoencoder, SparseAutoencoder
from funml_lib.live import PAGE_BUDGET, live_denoiser, live_latent, live_sparse_code
from funml_lib.live_export import RUNTIME, TOLERANCE, dequantize_rows, fc_layers, quantize_rows, run_layers

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed (apt install nodejs)")


def digits(n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """Digit-like inputs in [0, 1]: mostly 0, some ink in k/255 steps, and labels 0..9."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 784), generator=g).float() / 255
    x = x * (torch.rand(n, 784, generator=g) > 0.8)
    return x, torch.arange(n) % 10


def denoisers() -> dict[str, FCAutoencoder]:
    torch.manual_seed(0)
    return {"linear": FCAutoencoder(10, (256,), nonlinear=False), "nonlinear": FCAutoencoder(10, (256,))}


def data_of(html_text: str) -> dict:
    text = re.search(r'<script type="application/json" class="funml-live-data">(.*?)</script>',
                     html_text, re.S).group(1)
    return json.loads(text)


# ------------------------------------------------------------------------------ compression
def test_quantize_rows_hand_computed():
    w = torch.tensor([[1.0, -0.5, 0.25], [0.0, 0.0, 0.0]])
    q, scale = quantize_rows(w)
    # row 0: scale 1/127; -0.5 * 127 = -63.5 rounds to even (-64), 0.25 * 127 = 31.75 -> 32
    assert q.tolist() == [[127, -64, 32], [0, 0, 0]]
    assert scale.tolist() == pytest.approx([1 / 127, 1.0])
    back = dequantize_rows(q, scale)
    assert back[0].tolist() == pytest.approx([1.0, -64 / 127, 32 / 127], abs=1e-7)
    err = (back - w).abs()
    assert err.max().item() == pytest.approx(0.5 / 127, abs=1e-7)   # |-0.5 + 64/127|
    assert bool((err <= scale[:, None] / 2 + 1e-7).all())            # the bound: half a step


def test_linear_model_ships_as_its_exact_composition():
    model = denoisers()["linear"]
    layers = fc_layers(model)
    assert [tuple(w.shape) for w, _, _ in layers] == [(10, 784), (784, 10)]
    assert [act for _, _, act in layers] == ["none", "none"]
    x, _ = digits(8)
    with torch.no_grad():
        expected = model(x)
    assert (run_layers(layers, x) - expected).abs().max().item() < 1e-5


def test_nonlinear_model_keeps_its_four_layers_and_activations():
    layers = fc_layers(denoisers()["nonlinear"])
    assert [(tuple(w.shape), act) for w, _, act in layers] == [
        ((256, 784), "relu"), ((10, 256), "none"), ((256, 10), "relu"), ((784, 256), "sigmoid")]


# -------------------------------------------------------------------- sizes and compression cost
def test_views_at_chapter_sizes_fit_the_page_budget():
    x, y = digits()
    torch.manual_seed(0)
    views = [live_denoiser(denoisers(), x, labels=y),
             live_sparse_code({"plain": SparseAutoencoder(128), "KL": SparseAutoencoder(128)}, x, labels=y),
             live_latent(VAE(latent_dim=2, hidden_dim=400), x, labels=y)]
    for view in views:
        data = data_of(view.html)
        counted = len(re.search(r'class="funml-live-data">(.*?)</script>', view.html, re.S).group(1)
                      .encode()) + len(RUNTIME.read_bytes())   # UTF-8 bytes, as the page counts them
        assert view.bytes == counted <= PAGE_BUDGET
        assert data["quantization"] == view.quantization
        assert max(view.quantization.values()) < 0.01   # 8 bits cost well under 1 % of the range
        assert data["tolerance"] == TOLERANCE <= 2e-3
    # the denoisers fit with the linear model in float16 and only the nonlinear one in 8 bits
    assert views[0].compression == {"linear": "float16", "nonlinear": "float16+int8"}
    assert views[2].compression == {"encoder": "float16+int8", "decoder": "float16+int8"}


def test_float16_latent_view_is_over_budget_with_a_clear_error():
    x, _ = digits()
    with pytest.raises(ValueError, match=r"^budget_bytes: this view needs [\d,]+ bytes of weights and code "
                                         r"with compression='float16', over budget_bytes = 1,000,000; "):
        live_latent(VAE(latent_dim=2, hidden_dim=400), x, compression="float16")


def test_reference_outputs_use_the_compressed_weights():
    x, y = digits()
    view = live_denoiser(denoisers(), x, labels=y, compression="int8")
    data = data_of(view.html)
    ref = [r for r in data["reference"] if r["model"] == "nonlinear"][0]
    model = denoisers()["nonlinear"]
    layers = []
    for w, b, act in fc_layers(model):
        if w.numel() >= 4096:
            w = dequantize_rows(*quantize_rows(w))
        else:
            w = w.half().float()
        layers.append((w, b, act))
    out = run_layers(layers, torch.tensor([ref["input"]]))[0]
    # 5 decimals in the page, and float32 steps of 6e-8 near 0.5
    assert (out - torch.tensor(ref["output"])).abs().max().item() <= 5e-6 + 1e-7
    with torch.no_grad():
        full = model(torch.tensor([ref["input"]]))[0]
    assert (out - full).abs().max().item() <= view.quantization["nonlinear"] + 1e-7


# ------------------------------------------------------------------------------ the runtime in Node
def node(script: str, stdin: str = "") -> dict:
    run = subprocess.run([NODE, "-e", script], input=stdin, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@needs_node
@pytest.mark.parametrize("kind", ["denoiser", "sparse", "latent"])
def test_runtime_in_node_matches_torch_on_every_reference(kind):
    x, y = digits()
    torch.manual_seed(1)
    view = {"denoiser": lambda: live_denoiser(denoisers(), x, labels=y),
            "sparse": lambda: live_sparse_code({"plain": SparseAutoencoder(128), "KL": SparseAutoencoder(128)},
                                               x, labels=y),
            "latent": lambda: live_latent(VAE(latent_dim=2, hidden_dim=400), x, labels=y)}[kind]()
    script = f"""
const live = require({json.dumps(str(RUNTIME))});
const data = JSON.parse(require("fs").readFileSync(0, "utf8"));
const models = live.decodeModels(data);
let worst = 0, n = 0;
for (const r of data.reference) {{
  worst = Math.max(worst, live.maxDiff(live.runLayers(models[r.model], r.input), r.output)); n++;
}}
const first = models[Object.keys(models)[0]][0];
console.log(JSON.stringify({{worst, n, w: Array.from(first.w.slice(0, 6)), b: Array.from(first.b.slice(0, 3))}}));
"""
    got = node(script, json.dumps(data_of(view.html)))
    assert got["n"] == len(data_of(view.html)["reference"]) >= 4
    assert got["worst"] <= 1e-5 < TOLERANCE   # 5e-6 of it is the page's rounding to 5 decimals


@needs_node
def test_runtime_weights_are_exactly_the_dequantized_ones():
    x, _ = digits()
    model = FCAutoencoder(10, (256,))
    view = live_denoiser({"m": model}, x, compression="int8")
    script = f"""
const live = require({json.dumps(str(RUNTIME))});
const m = live.decodeModels(JSON.parse(require("fs").readFileSync(0, "utf8"))).m;
console.log(JSON.stringify({{w0: Array.from(m[0].w.slice(0, 5)), w1: Array.from(m[1].w.slice(0, 5)),
                            b3: Array.from(m[3].b.slice(0, 3)), half: live.half(0x3555)}}));
"""
    got = node(script, json.dumps(data_of(view.html)))
    w0 = dequantize_rows(*quantize_rows(model.encoder[0].weight))[0, :5]
    w1 = model.encoder[2].weight.detach().half().float()[0, :5]   # 2,560 weights: float16
    assert got["w0"] == w0.tolist()   # bit for bit (float32 stored in a Float32Array)
    assert got["w1"] == w1.tolist()
    assert got["b3"] == model.decoder[2].bias.detach()[:3].tolist()
    assert got["half"] == 0.333251953125   # float16 0x3555 by hand: (1 + 341/1024) / 4


@needs_node
def test_drawing_is_made_into_an_mnist_like_digit():
    # a filled 100 x 50 rectangle on the 280 x 280 pad: its box becomes 20 x 10 pixels of ink, and
    # its centre of mass moves to the middle: columns 4..23 (round(13.5 - 9.5)), rows 9..18
    script = f"""
const live = require({json.dumps(str(RUNTIME))});
const ink = new Float64Array(280 * 280);
for (let i = 30; i < 80; i++) for (let j = 150; j < 250; j++) ink[i * 280 + j] = 1;
const out = live.toMnist(ink, 280);
const on = []; out.forEach((v, p) => {{ if (v > 0) on.push([Math.floor(p / 28), p % 28, v]); }});
console.log(JSON.stringify({{n: on.length, first: on[0], last: on[on.length - 1],
  values: [...new Set(on.map(t => t[2]))], empty: live.toMnist(new Float64Array(280 * 280), 280)
  .reduce((s, v) => s + v, 0), noisy: live.addNoise([0, 1, 0.5], [-1, 1, 0.2], 0.5)}}));
"""
    got = node(script)
    assert got["n"] == 200 and got["first"][:2] == [9, 4] and got["last"][:2] == [18, 23]
    assert got["values"] == [1]
    assert got["empty"] == 0
    assert got["noisy"] == pytest.approx([0.0, 1.0, 0.6])   # clip(x + sigma * eps) to [0, 1]


# ------------------------------------------------------------------------------ HTML and contract
class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def classes(html_text: str) -> dict[str, tuple[str, dict]]:
    p = Tags()
    p.feed(html_text)
    return {c: (tag, a) for tag, a in p.tags for c in (a.get("class") or "").split()}


def test_html_carries_the_contract_classes_and_attributes():
    x, y = digits()
    den = live_denoiser(denoisers(), x, labels=y)
    lat = live_latent(VAE(latent_dim=2, hidden_dim=400), x, labels=y)
    spa = live_sparse_code({"plain": SparseAutoencoder(16)}, x, labels=y, k=3)
    for view, kind in [(den, "denoiser"), (lat, "latent"), (spa, "sparse")]:
        c = classes(view.html)
        tag, root = c["funml-live"]
        assert (tag, root["data-funml-kind"], root["role"]) == ("div", kind, "group") and root["aria-label"]
        assert c["funml-live-fallback"][0] == "p"
        assert c["funml-live-pad"][0] == "canvas" and c["funml-live-pad"][1]["aria-label"]
        assert c["funml-live-digits"][0] == "select"
        assert c["funml-live-data"] == ("script", {"type": "application/json", "class": "funml-live-data"})
        assert view.html.endswith(f"<script>{RUNTIME.read_text(encoding='utf-8')}</script></div>")
        bundle = view._repr_mimebundle_()
        assert set(bundle) == {"text/html", "text/plain"} and "\n" not in bundle["text/plain"]
        assert bundle["text/plain"].startswith(f"live {kind} view: ")
    assert classes(den.html)["funml-live-noise"][1]["type"] == "range"
    assert classes(lat.html)["funml-live-plane"][1]["tabindex"] == "0"
    assert classes(spa.html)["funml-live-k"][1]["max"] == "16"
    # one option per digit, one per class first: labels 0..9
    assert re.findall(r"\(a (\d)\)", den.html) == [str(d) for d in range(10)]


def test_an_untrusted_name_cannot_end_the_json_script():
    x, _ = digits()
    evil = "</script><script>alert(1)</script><!--"
    view = live_denoiser({evil: FCAutoencoder(4, (8,))}, x)
    assert view.html.count("</script>") == 2       # the data script's end and the runtime's
    assert "alert(1)</script>" not in view.html
    assert evil in data_of(view.html)["models"]    # and the name comes back intact
    runtime = RUNTIME.read_text(encoding="utf-8")
    assert "</script" not in runtime.lower() and "<!--" not in runtime


# ------------------------------------------------------------------------------ argument errors
@pytest.mark.parametrize("call, error, message", [
    (lambda x, y: live_denoiser(denoisers(), x, sigma=2), ValueError, "sigma must be in [0, 1], got 2"),
    (lambda x, y: live_denoiser(denoisers(), x, n_digits=0), ValueError, "n_digits must be an int in [1, 20], got 0"),
    (lambda x, y: live_denoiser(denoisers(), x, seed=-1), ValueError,
     "seed must be an int in [0, 2**64 - 1], got -1"),
    (lambda x, y: live_denoiser(denoisers(), x, compression="int4"), ValueError,
     "compression must be one of 'auto', 'int8', 'float16', got 'int4'"),
    (lambda x, y: live_denoiser({"a": SparseAutoencoder(8)}, x), TypeError,
     "models must be a dict of 1 to 4 name -> FCAutoencoder, got dict of 1"),
    (lambda x, y: live_denoiser(denoisers(), x * 2), ValueError,
     "digits must have all values in [0, 1], got values in [0, 2]"),
    (lambda x, y: live_denoiser(denoisers(), x, labels=y[:3]), ValueError,
     "labels must be an integer tensor of shape (40,), one per digit, got Tensor(3,)"),
    (lambda x, y: live_sparse_code({"a": SparseAutoencoder(8)}, x, k=9), ValueError,
     "k must be an int in [1, 8] (the smallest hidden_dim), got 9"),
    (lambda x, y: live_latent(VAE(latent_dim=20), x), ValueError,
     "vae_2d must be a funml_lib VAE with latent_dim=2, got latent_dim=20"),
    (lambda x, y: live_latent(FCAutoencoder(2), x), ValueError,
     "vae_2d must be a funml_lib VAE with latent_dim=2, got FCAutoencoder"),
    (lambda x, y: live_latent(VAE(latent_dim=2, hidden_dim=8), x, n_points=0), ValueError,
     "n_points must be an int in [1, 2000], got 0"),
    (lambda x, y: live_denoiser(denoisers(), x, budget_bytes=0), ValueError,
     "budget_bytes must be an int >= 1, got 0"),
])
def test_bad_arguments_get_exact_messages(call, error, message):
    x, y = digits()
    with pytest.raises(error) as info:
        call(x, y)
    assert str(info.value) == message


def test_nan_weights_are_refused():
    model = FCAutoencoder(4, (8,))
    with torch.no_grad():
        model.encoder[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"^models\['m'\] has NaN in encoder.0.weight"):
        live_denoiser({"m": model}, digits()[0])


def test_runtime_ships_with_the_package():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "live.js" in pyproject["tool"]["setuptools"]["package-data"]["funml_lib"]
    assert RUNTIME.parent.name == "funml_lib" and RUNTIME.is_file()


def test_a_model_name_is_never_taken_for_embedded_numbers():
    x, _ = digits()
    odd = "\x00RAW[1,2]</script>"
    view = live_sparse_code({odd: SparseAutoencoder(8)}, x, k=2)
    data = data_of(view.html)
    assert data["pairs"][0]["label"] == odd and view.html.count("</script>") == 2


@pytest.mark.parametrize("chapter, call", [("02_sparse_autoencoders", "live_sparse_code("),
                                           ("03_denoising_autoencoders", "live_denoiser("),
                                           ("05_vae_on_mnist", "live_latent(")])
def test_chapter_shows_its_live_view_after_its_explorer(chapter, call):
    import nbformat
    from pathlib import Path

    nb = nbformat.read(Path(__file__).resolve().parents[1] / "book" / f"{chapter}.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    live = [i for i, s in enumerate(code) if call in s]
    explorer = [i for i, s in enumerate(code) if "_explorer(" in s and "import" not in s.splitlines()[-1]]
    assert len(live) == 1 and explorer and live[0] > max(explorer)   # the explorers stay, above it
    cell = [c for c in nb.cells if c.cell_type == "code" and call in c.source][0]
    assert "claims" not in cell.metadata.get("tags", [])              # a cell the reader sees


def test_labels_outside_0_to_9_are_refused():
    # the page names and colours digits 0..9: label 12 or -5 gave an uncoloured dot or "(a -5)" silently
    x, y = digits()
    for labels in (y + 10, y - 5):
        with pytest.raises(ValueError, match=r"labels must hold digit labels in 0\.\.9"):
            live_latent(VAE(latent_dim=2, hidden_dim=8), x, labels=labels)


def test_weights_beyond_float16_are_refused_not_shipped_as_inf():
    # a weight of 1e30 became inf in float16: the page was built, its compression cost "nan"
    model = FCAutoencoder(4, (8,))
    with torch.no_grad():
        model.decoder[0].weight.mul_(1e30)
    with pytest.raises(ValueError, match=r"models \[.*\]: the compressed weights give non-finite outputs"):
        live_denoiser({"m": model}, digits()[0], compression="float16")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_models_that_are_not_float32_get_a_named_error(dtype):
    # was a RuntimeError from torch's Linear: "mat1 and mat2 must have the same dtype"
    with pytest.raises(TypeError, match=r"models\['m'\] has torch\.float\d\d parameters; .* model\.float\(\)"):
        live_denoiser({"m": FCAutoencoder(4, (8,)).to(dtype)}, digits()[0])
