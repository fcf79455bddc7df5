"""Tests for funml_lib.plotting: every function returns a Figure with the expected axes, image and labels."""
import matplotlib.pyplot as plt  # tests/conftest.py selects the headless Agg backend
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from funml_lib.plotting import (filter_grid, plot_filters, plot_history, plot_kl_sparsity_curve,
                                plot_latent_scatter, plot_manifold, show_images, show_rows)

PPF_05 = -1.6448536  # norm.ppf(0.05)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def only_axes(fig):
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_title()  # every figure has a title ...
    assert ax.get_xlabel()  # ... and says what its x axis is
    return ax


def test_show_images_grid_size_and_title():
    ax = only_axes(show_images(torch.rand(20, 784), nrow=10))
    assert len(ax.images) == 1
    # 2 lines x 10 digits of 28 px with 2 px between and around tiles
    assert ax.images[0].get_array().shape == (2 * 30 + 2, 10 * 30 + 2)
    assert ax.get_title() == "20 digits"
    assert only_axes(show_images(torch.rand(3, 1, 28, 28), title="three")).get_title() == "three"


def test_show_images_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"^x must have shape \(N, 784\), \(N, 28, 28\) or \(N, 1, 28, 28\) "
                                         r"with N >= 1, got \(4, 100\)$"):
        show_images(torch.rand(4, 100))
    with pytest.raises(ValueError, match=r"^nrow must be an int >= 1, got 0$"):
        show_images(torch.rand(4, 784), nrow=0)


def test_show_rows_labels_each_line():
    x = torch.rand(12, 784)
    ax = only_axes(show_rows({"input": x, "reconstruction": x.flip(0)[:5]}, nrow=8))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["input", "reconstruction"]
    image = ax.images[0].get_array()
    assert image.shape == (2 * 30 + 2, 8 * 30 + 2)
    assert float(image[32:60, 5 * 30 + 2:].min()) == 1.0  # the short second line is padded with white
    assert ax.get_title() == "input / reconstruction"
    with pytest.raises(ValueError, match="rows must be a non-empty dict"):
        show_rows({})


def test_plot_filters_tiles_and_normalisation():
    W1 = torch.randn(128, 784) * torch.arange(1, 129).unsqueeze(1)  # very different norms per unit
    ax = only_axes(plot_filters(W1))
    image = ax.images[0].get_array()
    assert image.shape == (8 * 30 + 2, 16 * 30 + 2)  # 8 lines x 16 tiles of 28 px
    first, last = image[2:30, 2:30], image[7 * 30 + 2:8 * 30, 15 * 30 + 2:16 * 30]
    for tile in (first, last):  # every tile spans the full gray range, whatever its norm
        assert float(tile.min()) == 0.0 and float(tile.max()) == pytest.approx(1.0)
    assert ax.images[0].get_cmap().name == "gray"
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    with pytest.raises(ValueError, match=r"^W1 must have shape \(hidden, 784\) with hidden >= 1, got \(784,\)$"):
        plot_filters(torch.rand(784))


def test_pixel_images_are_drawn_nearest_neighbour_and_stay_light():
    import io

    torch.manual_seed(0)
    W1 = torch.randn(128, 784)
    fig = plot_filters(W1)
    assert fig.axes[0].images[0].get_interpolation() == "nearest"  # no smoothing between pixels
    assert torch.equal(torch.as_tensor(fig.axes[0].images[0].get_array()), filter_grid(W1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    assert len(buf.getvalue()) < 400_000  # 0.6 MB when smoothed and drawn at a larger size
    for draw in (lambda: show_images(torch.rand(20, 784)),
                 lambda: show_rows({"a": torch.rand(5, 784)}),
                 lambda: plot_manifold(lambda z: torch.rand(len(z), 784), n=3)):
        assert draw().axes[0].images[0].get_interpolation() == "nearest"


def test_plot_filters_takes_a_parameter_with_grad():
    layer = nn.Linear(784, 10)
    ax = only_axes(plot_filters(layer.weight, nrow=5))
    assert ax.images[0].get_array().shape == (2 * 30 + 2, 5 * 30 + 2)


def test_plot_latent_scatter_legend_and_labels():
    z, y = torch.randn(200, 2), torch.arange(200) % 10
    ax = only_axes(plot_latent_scatter(z, y))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(d) for d in range(10)]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z1", "z2")
    with pytest.raises(ValueError, match=r"^z must have shape \(N, 2\) with N >= 1 \(a 2-d latent space\), "
                                         r"got \(200, 3\)$"):
        plot_latent_scatter(torch.randn(200, 3), y)
    with pytest.raises(ValueError, match=r"^y must hold digit labels in 0..9, got values in \[0, 10\]$"):
        plot_latent_scatter(z, torch.arange(200) % 11)


def test_plot_manifold_grid_of_gaussian_quantiles():
    seen = {}

    def decode(z):
        seen["z"] = z
        return ((z[:, 1:2] + 2) / 4).expand(-1, 784)  # brightness shows z2

    ax = only_axes(plot_manifold(decode, n=20))
    z = seen["z"]
    assert z.shape == (400, 2)
    assert z[0].tolist() == pytest.approx([PPF_05, PPF_05], abs=1e-4)
    assert z[-1].tolist() == pytest.approx([-PPF_05, -PPF_05], abs=1e-4)
    assert z[1, 0] > z[0, 0] and z[1, 1] == z[0, 1]  # z1 changes fastest
    image = ax.images[0].get_array()
    assert image.shape == (20 * 30 + 2, 20 * 30 + 2)
    assert float(image[2, 2]) == pytest.approx((-PPF_05 + 2) / 4, abs=1e-4)  # top line = largest z2
    assert float(image[-3, 2]) == pytest.approx((PPF_05 + 2) / 4, abs=1e-4)
    assert ax.get_xticklabels()[0].get_text() == "-1.64"
    assert ax.get_yticklabels()[0].get_text() == "1.64"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z1", "z2")


def test_plot_manifold_uses_the_model_and_checks_output():
    class TwoD(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = nn.Linear(2, 784)

        def decode(self, z):
            return torch.sigmoid(self.out(z))

    assert isinstance(plot_manifold(TwoD().decode, n=3), Figure)
    with pytest.raises(ValueError, match=r"^decode must return a tensor of shape \(n\*n, 784\) = \(9, 784\), "
                                         r"got \(9, 10\)$"):
        plot_manifold(lambda z: torch.zeros(len(z), 10), n=3)


def test_plot_history_one_curve_per_key():
    history = {"loss": [3.0, 2.0, 1.5], "kl": [0.5, 0.7, 0.8]}
    ax = only_axes(plot_history(history))
    assert [line.get_label() for line in ax.get_lines()] == ["loss", "kl"]
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]
    assert ax.get_xlabel() == "epoch"
    assert len(only_axes(plot_history(history, keys=["kl"])).get_lines()) == 1
    with pytest.raises(ValueError, match=r"^keys must be a non-empty list of names from \['loss', 'kl'\], "
                                         r"got \['nll'\]$"):
        plot_history(history, keys=["nll"])


def test_plot_kl_sparsity_curve_minimum_at_rho():
    ax = only_axes(plot_kl_sparsity_curve(rho=0.05))
    curve, marker = ax.get_lines()
    x, y = curve.get_xdata(), curve.get_ydata()
    assert x[y.argmin()] == pytest.approx(0.05, abs=1e-3) and y.min() == pytest.approx(0.0, abs=1e-5)
    assert list(marker.get_xdata()) == [0.05] and list(marker.get_ydata()) == [0.0]
    lo, hi = ax.get_ylim()
    assert lo < 0.0 < 2.0 <= hi <= 2.5  # clipped: the minimum is not squashed by the rise towards 1
    with pytest.raises(ValueError, match=r"^rho must be in the open interval \(0, 1\), got 1.5$"):
        plot_kl_sparsity_curve(rho=1.5)


def test_given_axes_are_used():
    fig, axes = plt.subplots(1, 2)
    assert show_images(torch.rand(4, 784), ax=axes[0]) is fig
    assert plot_kl_sparsity_curve(ax=axes[1]) is fig
    assert len(axes[0].images) == 1 and len(axes[1].get_lines()) == 2
    with pytest.raises(TypeError, match="^ax must be None or a matplotlib Axes, got str$"):
        plot_history({"loss": [1.0]}, ax="left")


def test_labels_and_histories_are_checked_not_truncated_or_gapped():
    from funml_lib.plotting import plot_history, plot_latent_scatter

    with pytest.raises(TypeError, match="y must be an integer tensor of digit labels in 0..9, got dtype "
                                        "torch.float32"):
        plot_latent_scatter(torch.zeros(3, 2), torch.tensor([0.0, 2.7, 9.0]))
    with pytest.raises(ValueError) as err:
        plot_history({"loss": [1.0, float("nan"), 0.5, float("inf")]})
    assert str(err.value) == ("history['loss'] must hold finite numbers, got NaN or infinity at epoch(s) "
                              "2, 4 (did training diverge? try a smaller lr)")


def test_a_history_of_non_numbers_names_the_term():
    from funml_lib.plotting import plot_history

    with pytest.raises(TypeError, match=r"^history\['loss'\] must be a list of numbers, one per epoch, got "
                                        r"\['a', 'b'\]$"):
        plot_history({"loss": ["a", "b"]})
    with pytest.raises(TypeError, match=r"^history\['kl'\] must be a list of numbers"):
        plot_history({"kl": 3.0})
