"""Explorers driven without a browser: set a control's .value, check what was redrawn."""
import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from funml_lib import widgets
from funml_lib.models import VAE, FCAutoencoder, SparseAutoencoder

PNG = b"\x89PNG"


@pytest.fixture()
def live(monkeypatch):
    monkeypatch.delenv(widgets.STATIC_ENV, raising=False)


def shown(explorer, monkeypatch) -> list:
    """What the explorer puts on screen in a notebook (objects passed to IPython's display)."""
    seen = []
    monkeypatch.setattr("IPython.display.display", lambda obj: seen.append(obj))
    explorer._ipython_display_()
    return seen


def test_draw_kl_is_zero_at_rho_and_matches_the_formula():
    ax = Figure().add_subplot()
    data = widgets.draw_kl(0.2, ax)
    i = int(np.argmin(data["kl"]))
    assert data["rho_hat"][i] == pytest.approx(0.2, abs=1e-3) and data["kl"][i] == pytest.approx(0, abs=1e-5)
    j = int(np.argmin(np.abs(data["rho_hat"] - 0.5)))  # KL(0.2 || 0.5) = 0.2 ln 0.4 + 0.8 ln 1.6
    assert data["kl"][j] == pytest.approx(0.2 * math.log(0.4) + 0.8 * math.log(1.6), abs=1e-4)
    with pytest.raises(ValueError, match=r"rho must be in the open interval \(0, 1\), got 1.5"):
        widgets.draw_kl(1.5, ax)


def test_kl_explorer_slider_redraws(live):
    ex = widgets.kl_explorer(rho=0.05)
    assert ex.controls == {}  # nothing built before it is shown
    box = ex.widget
    first = bytes(ex._image.value)  # ipywidgets keeps the PNG bytes as a memoryview
    assert first.startswith(PNG) and ex.values() == {"rho": 0.05}
    ex.controls["rho"].value = 0.3
    minimum = ex.last["rho_hat"][int(np.argmin(ex.last["kl"]))]
    assert minimum == pytest.approx(0.3, abs=1e-3)
    assert bytes(ex._image.value) != first and box.children[1] is ex._image


def test_static_figure_is_a_row_of_values():
    ex = widgets.kl_explorer(static_rhos=(0.05, 0.2, 0.5))
    titles = [ax.get_title() for ax in ex.static_figure.axes]
    assert len(titles) == 3 and "0.2" in titles[1]
    with pytest.raises(ValueError, match="static_rhos must be in the open interval"):
        widgets.kl_explorer(static_rhos=(0.05, 1.0))


def test_display_in_jupyter_shows_static_figure_and_widget(live, monkeypatch):
    ex = widgets.kl_explorer()
    seen = shown(ex, monkeypatch)
    assert len(seen) == 2 and seen[0].data.startswith(PNG) and seen[1] is ex.widget


def test_book_build_shows_only_the_static_figure(monkeypatch):
    monkeypatch.setenv(widgets.STATIC_ENV, "1")
    ex = widgets.kl_explorer()
    seen = shown(ex, monkeypatch)
    assert len(seen) == 1 and seen[0].data.startswith(PNG)
    assert ex._widget is None  # no widget (and so no widget state) was ever created


def test_filter_explorer_switches_models(live):
    torch.manual_seed(0)
    models = {"λ = 0.001": SparseAutoencoder(hidden_dim=32), "λ = 0.003": SparseAutoencoder(hidden_dim=32),
              "plain AE": FCAutoencoder(latent_dim=4, hidden_dims=(16,))}
    ex = widgets.filter_explorer(models, nrow=8)
    assert [ax.get_title() for ax in ex.static_figure.axes] == list(models)
    ex.widget
    assert torch.equal(ex.last, models["λ = 0.001"].W1.detach())
    ex.controls["model"].value = "plain AE"
    assert ex.last.shape == (16, 784)  # the plain AE's first Linear layer on the pixels
    assert torch.equal(ex.last, models["plain AE"].encoder[0].weight.detach())
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
    low = ex.last["noisy"]
    ex.controls["sigma"].value = 0.5
    assert ex.last["noisy"] > low > 0 and set(ex.last) == {"noisy", "nonlinear"}
    assert model.training  # drawing used eval mode and restored the mode
    mse = widgets.draw_denoising(model, x[:5], 0.0, Figure().add_subplot())
    assert mse["noisy"] == 0.0
    with pytest.raises(ValueError, match="sigmas must be a non-empty list"):
        widgets.denoising_explorer(model, x, sigmas=[])
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0, got -0.1"):
        widgets.draw_denoising(model, x, -0.1, Figure().add_subplot())


def test_latent_explorer_decodes_the_slider_point(live):
    torch.manual_seed(0)
    vae = VAE(latent_dim=2, hidden_dim=16)
    ex = widgets.latent_explorer(vae, n_static=5)
    assert ex.static_figure.axes[0].get_title().startswith("decoded digits for z from -2 to 2")
    ex.widget
    ex.controls["z1"].value = 1.5
    ex.controls["z2"].value = -0.5
    with torch.no_grad():
        expected = vae.decode(torch.tensor([[1.5, -0.5]])).reshape(28, 28).numpy()
    assert ex.values() == {"z1": 1.5, "z2": -0.5}
    np.testing.assert_allclose(ex.last, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="vae2d must have a 2-d latent space"):
        widgets.latent_explorer(VAE(latent_dim=3, hidden_dim=8))
    with pytest.raises(ValueError, match="z1 and z2 must be finite"):
        widgets.draw_decoded(vae, math.nan, 0.0, Figure().add_subplot())


def test_in_colab_the_custom_widget_manager_is_enabled(live, monkeypatch):
    import sys
    import types

    calls = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append("on"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    widgets.kl_explorer().widget
    assert calls == ["on"]
