"""Explorers driven without a browser: frames, the slider -> Stack links, what is displayed where.

That a slider moves the shown frame in the browser is checked by coursekit/check_site.py on the built
book (tests/test_site_check.py proves that check fails when a link is missing) and, in a live Jupyter
front end, by tests/test_frontend.py. `make oldest` runs this file with ipywidgets 7.7.1 too: the
tests that need a `Stack` skip there and the ones marked for ipywidgets 7 run instead."""
import io
import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from funml_lib import frames, widgets
from funml_lib.losses import kl_sparsity
from funml_lib.models import VAE, FCAutoencoder, SparseAutoencoder

PNG = b"\x89PNG"


STACK = frames.has_stack()
needs_stack = pytest.mark.skipif(not STACK, reason="ipywidgets 7: no Stack (see the ipywidgets-7 tests)")


class FakeShell:
    kernel = object()  # what an IPython kernel behind a Jupyter front end has


@pytest.fixture()
def live(monkeypatch):
    """An explorer displayed as in a notebook: not static, and a kernel with a front end."""
    monkeypatch.delenv(widgets.STATIC_ENV, raising=False)
    monkeypatch.setattr("IPython.get_ipython", lambda: FakeShell())


def shown(explorer, monkeypatch) -> list:
    """What the explorer puts on screen in a notebook (objects passed to IPython's display, and
    printed text as str)."""
    seen = []
    monkeypatch.setattr("IPython.display.display", lambda obj: seen.append(obj))
    monkeypatch.setattr("builtins.print", lambda *args: seen.append(" ".join(map(str, args))))
    explorer._ipython_display_()
    return seen


def links_of(box):
    """(source widget, source trait, target widget, target trait) of every link the explorer made."""
    return [(l.source[0], l.source[1], l.target[0], l.target[1]) for l in box._funml_links]


def test_kl_curve_is_computed_not_read_back_from_the_plot():
    data = widgets.kl_curve(0.2)
    i = int(np.argmin(data["kl"]))
    assert data["rho_hat"][i] == pytest.approx(0.2, abs=1e-3) and data["kl"][i] == pytest.approx(0, abs=1e-5)
    j = int(np.argmin(np.abs(data["rho_hat"] - 0.5)))  # KL(0.2 || 0.5) = 0.2 ln 0.4 + 0.8 ln 1.6
    assert data["kl"][j] == pytest.approx(0.2 * math.log(0.4) + 0.8 * math.log(1.6), abs=1e-4)
    ax = Figure().add_subplot()
    drawn = widgets.draw_kl(0.2, ax)
    np.testing.assert_allclose(drawn["kl"], kl_sparsity(0.2, torch.tensor(drawn["rho_hat"])).numpy())
    with pytest.raises(ValueError, match=r"rho must be in the open interval \(0, 1\), got 1.5"):
        widgets.draw_kl(1.5, ax)


@needs_stack
def test_kl_explorer_links_the_slider_to_a_stack_of_precomputed_frames(live):
    ex = widgets.kl_explorer(rho=0.05, rhos=(0.02, 0.1, 0.3))
    assert ex.controls == {}  # nothing built before it is shown
    box = ex.widget
    slider, stack = ex.controls["rho"], box.children[1]
    assert [v for _, v in slider.options] == [0.02, 0.05, 0.1, 0.3]  # rho joins the grid
    assert slider.value == 0.05 and stack.selected_index == slider.index == 1
    assert links_of(box) == [(slider, "index", stack, "selected_index")]
    assert "funml-explorer" in box._dom_classes and slider.description == "ρ"
    assert box.children[2].value == ex.caption and "KL(ρ ‖ ρ̂)" in ex.caption
    assert slider.options[1][0] == "0.05"  # the readout shows the value
    for k, image in enumerate(stack.children):  # frame k is the curve for the k-th rho
        assert bytes(image.value) == ex.frames[(k,)][0] and bytes(image.value).startswith(PNG)
        curve = ex.frames[(k,)][1]
        assert curve["rho_hat"][int(np.argmin(curve["kl"]))] == pytest.approx(slider.options[k][1], abs=1e-3)
    assert len({bytes(i.value) for i in stack.children}) == 4
    assert ex.shown() == ex.frames[(1,)][0]
    slider.index = 3  # in Python the link is not followed (it lives in the browser) ...
    assert ex.values() == {"rho": 0.3} and ex.last is ex.frames[(3,)][1]


def test_static_figure_is_a_row_of_values():
    ex = widgets.kl_explorer(static_rhos=(0.05, 0.2, 0.5))
    titles = [ax.get_title() for ax in ex.static_figure.axes]
    assert len(titles) == 3 and "0.2" in titles[1]
    with pytest.raises(ValueError, match="static_rhos must be in the open interval"):
        widgets.kl_explorer(static_rhos=(0.05, 1.0))


def test_display_in_jupyter_shows_static_figure_and_widget(live, monkeypatch):
    ex = widgets.kl_explorer(rhos=(0.1,))
    seen = shown(ex, monkeypatch)
    assert len(seen) == 2 and seen[0].data.startswith(PNG) and seen[1] is ex.widget


def test_static_mode_shows_only_the_static_figure(monkeypatch):
    monkeypatch.setenv(widgets.STATIC_ENV, "yes")
    ex = widgets.kl_explorer()
    seen = shown(ex, monkeypatch)
    assert len(seen) == 1 and seen[0].data.startswith(PNG)
    assert ex._widget is None and ex._frames is None  # no frames computed, no widget state
    monkeypatch.setenv(widgets.STATIC_ENV, "0")
    assert not widgets.static_mode()


def test_filter_explorer_one_native_resolution_frame_per_model(live):
    torch.manual_seed(0)
    models = {"λ = 0.001": SparseAutoencoder(hidden_dim=32), "λ = 0.003": SparseAutoencoder(hidden_dim=32),
              "plain AE": FCAutoencoder(latent_dim=4, hidden_dims=(16,))}
    ex = widgets.filter_explorer(models, nrow=8)
    assert [ax.get_title() for ax in ex.static_figure.axes] == list(models)
    ex.widget
    assert [label for label, _ in ex.controls["model"].options] == list(models)
    assert torch.equal(ex.last, models["λ = 0.001"].W1.detach())
    assert torch.equal(ex.frames[(2,)][1], models["plain AE"].encoder[0].weight.detach())
    size = Image.open(io.BytesIO(ex.frames[(0,)][0])).size
    assert size == (8 * 30 + 2, 4 * 30 + 2)  # 32 tiles of 28 px + 2 px gaps: native resolution
    with pytest.raises(TypeError, match=r"models\['x'\] must be a model with a first Linear layer"):
        widgets.filter_explorer({"x": torch.nn.Conv2d(1, 1, 3)})


def test_denoising_explorer_noise_slider(live):
    torch.manual_seed(0)
    x = torch.rand(20, 784)
    model = FCAutoencoder(latent_dim=4, hidden_dims=(16,)).train()
    ex = widgets.denoising_explorer({"nonlinear": model}, x, sigmas=[0.0, 0.2, 0.5], n_show=5)
    assert len(ex.static_figure.axes) == 3
    ex.widget
    assert ex.values() == {"sigma": 0.2}
    assert ex.frames[(2,)][1]["noisy"] > ex.last["noisy"] > ex.frames[(0,)][1]["noisy"] == 0.0
    assert set(ex.last) == {"noisy", "nonlinear"}
    assert model.training  # drawing used eval mode and restored the mode
    with pytest.raises(ValueError, match="sigmas must be a non-empty list"):
        widgets.denoising_explorer(model, x, sigmas=[])
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0, got -0.1"):
        widgets.draw_denoising(model, x, -0.1, Figure().add_subplot())


@needs_stack
def test_latent_explorer_two_sliders_over_nested_stacks(live):
    torch.manual_seed(0)
    vae = VAE(latent_dim=2, hidden_dim=16)
    ex = widgets.latent_explorer(vae, n_static=5, n_grid=5, z_range=2.0)
    assert ex.static_figure.axes[0].get_title().startswith("decoded digits for z from -2 to 2")
    box = ex.widget
    z1, z2 = ex.controls["z1"], ex.controls["z2"]
    outer = box.children[1]
    assert ex.values() == {"z1": 0.0, "z2": 0.0} and len(outer.children) == 5
    assert links_of(box)[-1] == (z1, "index", outer, "selected_index")
    assert [l[2] for l in links_of(box)[:-1]] == list(outer.children)  # z2 drives every inner Stack
    assert all(l[0] is z2 for l in links_of(box)[:-1])
    assert bytes(outer.children[3].children[1].value) == ex.frames[(3, 1)][0]
    with torch.no_grad():
        expected = vae.decode(torch.tensor([[1.0, -1.0]])).reshape(28, 28).numpy()
    np.testing.assert_allclose(ex.frames[(3, 1)][1], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="vae2d must have a 2-d latent space"):
        widgets.latent_explorer(VAE(latent_dim=3, hidden_dim=8))
    with pytest.raises(ValueError, match="z1 and z2 must be finite"):
        widgets.draw_decoded(vae, math.nan, 0.0, Figure().add_subplot())


def test_image_png_is_native_resolution_with_nearest_upscaling():
    a = np.zeros((28, 28))
    a[5, 7] = 1.0
    img = np.asarray(Image.open(io.BytesIO(frames.image_png(a, scale=3))).convert("L"))
    assert img.shape == (84, 84) and img[15:18, 21:24].min() == 255 and img.sum() == 9 * 255
    with pytest.raises(ValueError, match="2-d"):
        frames.image_png(np.zeros((2, 2, 2)))


def test_in_colab_the_custom_widget_manager_is_enabled(live, monkeypatch):
    import sys
    import types

    calls = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append("on"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    widgets.kl_explorer(rhos=(0.1,)).widget
    assert calls == ["on"]


# ------------------------------------------------------------------- ipywidgets 7: kernel callback
def without_stack(monkeypatch) -> None:
    """ipywidgets 7 has no Stack: take it away from ipywidgets 8 (make oldest runs the real 7.7.1)."""
    import ipywidgets

    if hasattr(ipywidgets, "Stack"):
        monkeypatch.delattr(ipywidgets, "Stack")


def test_without_stack_a_kernel_callback_swaps_the_one_image(live, monkeypatch):
    without_stack(monkeypatch)
    torch.manual_seed(0)
    vae = VAE(latent_dim=2, hidden_dim=16)
    ex = widgets.latent_explorer(vae, n_static=5, n_grid=5, z_range=2.0)
    box = ex.widget
    z1, z2 = ex.controls["z1"], ex.controls["z2"]
    view = box.children[1]
    assert type(view).__name__ == "Image" and box._funml_links == []
    assert ex.shown() == ex.frames[(2, 2)][0] and ex.values() == {"z1": 0.0, "z2": 0.0}
    z1.index = 3  # z1 = 1.0: the callback shows frame (3, 2) at once
    assert bytes(view.value) == ex.frames[(3, 2)][0]
    z2.index = 1  # z2 = -1.0
    assert ex.shown() == ex.frames[(3, 1)][0] != ex.frames[(2, 2)][0]
    with torch.no_grad():
        expected = vae.decode(torch.tensor([[1.0, -1.0]])).reshape(28, 28).numpy()
    np.testing.assert_allclose(ex.last, expected, rtol=1e-5, atol=1e-6)
    assert "funml-explorer" in box._dom_classes and box.children[2].value == ex.caption


def test_without_stack_the_kl_slider_redraws(live, monkeypatch):
    without_stack(monkeypatch)
    ex = widgets.kl_explorer(rho=0.05, rhos=(0.02, 0.1, 0.3))
    seen = shown(ex, monkeypatch)
    assert len(seen) == 2 and seen[1] is ex.widget
    slider = ex.controls["rho"]
    assert ex.shown() == ex.frames[(1,)][0]
    slider.value = 0.3
    assert ex.shown() == ex.frames[(3,)][0] and ex.values() == {"rho": 0.3}


# -------------------------------------------------- no usable widgets: the figure and one sentence
SENTENCE = ("Sliders are not shown here: {}; the figure above shows the same idea, and in Jupyter or "
            "Colab with ipywidgets >= 7.7.1 you also get sliders.")


def test_no_front_end_shows_figure_and_one_sentence(monkeypatch):
    monkeypatch.delenv(widgets.STATIC_ENV, raising=False)
    monkeypatch.setattr("IPython.get_ipython", lambda: None)  # plain Python or a terminal
    ex = widgets.kl_explorer(rhos=(0.1,))
    seen = shown(ex, monkeypatch)
    assert len(seen) == 2 and seen[0].data.startswith(PNG)
    assert seen[1] == SENTENCE.format("this Python runs without a Jupyter front end")
    assert ex._widget is None and ex._frames is None  # no frames drawn for nobody


def test_missing_ipywidgets_shows_figure_and_one_sentence(live, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # `import ipywidgets` raises ImportError
    ex = widgets.denoising_explorer(FCAutoencoder(latent_dim=4, hidden_dims=(16,)), torch.rand(3, 784),
                                    sigmas=[0.2], n_show=2)
    seen = shown(ex, monkeypatch)
    assert len(seen) == 2 and seen[0].data.startswith(PNG)
    assert seen[1] == SENTENCE.format("ipywidgets is not installed")


def test_too_old_or_broken_ipywidgets_shows_figure_and_one_sentence(live, monkeypatch):
    import sys
    import types

    old = types.ModuleType("ipywidgets")
    old.__version__ = "7.6.5"
    monkeypatch.setitem(sys.modules, "ipywidgets", old)
    seen = shown(widgets.kl_explorer(rhos=(0.1,)), monkeypatch)
    assert seen[1] == SENTENCE.format("ipywidgets 7.6.5 is older than 7.7.1")
    old.__version__ = "8.1.0"  # claims a good version, but has no widgets in it
    ex = widgets.kl_explorer(rhos=(0.1,))
    seen = shown(ex, monkeypatch)
    assert seen[1] == SENTENCE.format("ipywidgets failed to build the sliders (AttributeError: module "
                                      "'ipywidgets' has no attribute 'SelectionSlider')")
    assert ex._frames is not None  # the frames were fine; only the widget library failed


def test_release_parses_version_strings():
    assert frames._release("7.7.1") == (7, 7, 1) and frames._release("8.1.0rc1") == (8, 1, 0)
    assert frames._release("7.7") < frames._release("7.7.1") and frames._release("7.6.5") < (7, 7)
    assert frames._release("dev") == ()


# ---------------------------------------------------------------- NaN weights: never black frames
def test_explorer_of_a_diverged_model_says_so():
    torch.manual_seed(0)
    sae = SparseAutoencoder(hidden_dim=8)
    with torch.no_grad():
        sae.W1[0, 0] = math.nan
    msg = (r"models\['diverged'\] has NaN weights \(its training diverged: train it again, e.g. with a smaller "
           r"learning rate\); an explorer of it would show only blank frames")
    with pytest.raises(ValueError, match=msg):
        widgets.filter_explorer({"ok": SparseAutoencoder(hidden_dim=8), "diverged": sae})
    with pytest.raises(ValueError, match=msg):
        widgets.filter_explorer({"diverged": sae.W1.detach()})
    ae = FCAutoencoder(latent_dim=4, hidden_dims=(16,))
    with torch.no_grad():
        next(ae.decoder.parameters()).fill_(math.inf)
    with pytest.raises(ValueError, match=r"models\['FCAutoencoder'\] has infinite weights"):
        widgets.denoising_explorer(ae, torch.rand(3, 784))
    vae = VAE(latent_dim=2, hidden_dim=16)
    with torch.no_grad():
        next(vae.parameters()).fill_(math.nan)
    with pytest.raises(ValueError, match="vae2d has NaN weights"):
        widgets.latent_explorer(vae)


def test_a_nan_image_is_refused_not_drawn_black():
    a = np.full((28, 28), 0.5)
    a[3, 4] = math.nan
    with pytest.raises(ValueError, match=r"image contains NaN; a frame needs finite pixel values in \[0, 1\]"):
        frames.image_png(a)
    a[3, 4] = math.inf
    with pytest.raises(ValueError, match="image contains infinite values"):
        frames.image_png(a)


@pytest.mark.parametrize("kwargs, match", [({"scale": 0}, "scale must be an int >= 1"),
                                           ({"scale": -2}, "scale must be an int >= 1"),
                                           ({"scale": 2.5}, "scale must be an int >= 1"),
                                           ({"levels": 1}, r"levels must be an int in \[2, 256\]"),
                                           ({"levels": 0}, r"levels must be an int in \[2, 256\]"),
                                           ({"levels": 1000}, r"levels must be an int in \[2, 256\]")])
def test_image_png_refuses_a_scale_or_levels_it_would_ignore(kwargs, match):
    # scale=0 was ignored and 2.5 truncated; levels=0 or 1 gave an all-black frame without a word
    with pytest.raises((TypeError, ValueError), match=match):
        frames.image_png(np.full((28, 28), 0.5), **kwargs)


def test_image_png_levels_above_16_are_honoured_and_256_is_exact_8_bit():
    a = np.linspace(0, 1, 28 * 28).reshape(28, 28)
    four = np.asarray(Image.open(io.BytesIO(frames.image_png(a, levels=100))).convert("L"))
    assert len(np.unique(four)) == 100
    full = np.asarray(Image.open(io.BytesIO(frames.image_png(a, levels=256))).convert("L"))
    assert np.array_equal(full, np.round(a * 255).astype(np.uint8))
