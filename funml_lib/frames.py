"""Precomputed frames linked to sliders: the machinery behind funml_lib.widgets.

An explorer draws one PNG frame per control value (or per pair of values) while the notebook runs.
With ipywidgets 8 the frames sit in a `Stack` of `Image` widgets whose `selected_index` follows a
`SelectionSlider` through `jsdlink`, a link that lives in the browser: moving a slider needs no
kernel, so the same widget works in Jupyter, in Colab and on the book's HTML page, where the widget
state saved in the executed notebook is rendered by the ipywidgets html-manager. With two sliders the
Stacks are nested: the outer Stack follows the first slider, every inner Stack the second.

ipywidgets 7 (Colab's preinstalled version for years, still pinned by many JupyterHubs) has no
`Stack`; there the explorer shows one `Image` whose value a kernel callback swaps when a slider
moves. That needs a running kernel, which a live notebook has (the book's pages are built with
ipywidgets 8). Where no widget can be shown at all (ipywidgets missing, broken or older than 7.7.1, or
no Jupyter front end, e.g. a terminal) an explorer shows its static figure and one sentence saying
why, never a traceback. `Explorer` puts the static figure (for print and readers without
JavaScript) above the widget.

Markers the site check (coursekit/check_site.py) relies on: the explorer's box has the DOM class
`funml-explorer`, its first child holds the sliders in control order, its second child is the
(outer) Stack (ipywidgets 7: the Image), its third the caption; frame k of a slider is child k of the
Stacks at that depth.
"""
from __future__ import annotations

import io
import itertools
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from funml_lib._validate import check_int_range, check_positive_int, env_flag

EXPLORER_CLASS = "funml-explorer"
STATIC_ENV = "FUNML_STATIC"
MIN_IPYWIDGETS = "7.7.1"  # the oldest version the book is tested with (make oldest); pyproject.toml agrees
Frames = Callable[[], dict[tuple[int, ...], tuple[bytes, Any]]]


@dataclass(frozen=True)
class Control:
    """One slider: `name` (keyword of the frame function), `description` (label, may hold $math$),
    the grid of `values`, their readout `labels` and the `index` selected at first."""

    name: str
    description: str
    values: tuple
    labels: tuple[str, ...]
    index: int = 0


def control(name: str, description: str, values: Sequence[Any], fmt: Callable[[Any], str] = "{:g}".format,
            value: Any = None) -> Control:
    """A Control over `values`; `value` picks the first position (the nearest grid value for numbers)."""
    values = tuple(values)
    if not values:
        raise ValueError(f"{name}: a control needs at least one value")
    if value is None:
        index = len(values) // 2
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        index = int(np.argmin([abs(float(v) - float(value)) for v in values]))
    else:
        index = values.index(value)
    return Control(name, description, values, tuple(fmt(v) for v in values), index)


def figure_png(fig: Figure, dpi: int = 100, tight: bool = True) -> bytes:
    """Render a matplotlib Figure to PNG bytes (works with any backend, including Agg); tight=False
    keeps the figure's own size (half the time: a constrained layout already fits everything)."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def image_png(image: np.ndarray, scale: int = 1, levels: int = 16) -> bytes:
    """A grayscale (H, W) array in [0, 1] as PNG bytes at native resolution, each pixel repeated
    `scale` x `scale` times (nearest-neighbour upscaling: sharp digits, small files), with `levels`
    gray levels, an int in [2, 256] (up to 16: a 4-bit PNG, a third of the 8-bit size; above: 8-bit).
    scale: an int >= 1."""
    from PIL import Image

    scale = check_positive_int("scale", scale)  # 0, -2 or 2.5 were ignored or truncated without a word
    levels = check_int_range("levels", levels, 2, 256)  # 0 or 1 gave an all-black frame
    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"image must be a non-empty 2-d (H, W) array, got shape {a.shape}")
    if not np.isfinite(a).all():  # NaN would silently become a black frame
        bad = "NaN" if np.isnan(a).any() else "infinite values"
        raise ValueError(f"image contains {bad}; a frame needs finite pixel values in [0, 1] "
                         "(a model whose training diverged draws NaN)")
    a = np.clip(a, 0.0, 1.0)
    if scale > 1:
        a = a.repeat(scale, axis=0).repeat(scale, axis=1)
    buf = io.BytesIO()
    if levels <= 16:
        img = Image.fromarray(np.round(a * (levels - 1)).astype(np.uint8), mode="P")
        ramp = np.linspace(0, 255, levels).round().astype(np.uint8)
        img.putpalette(np.repeat(ramp, 3).tolist())
        img.save(buf, format="png", bits=4, compress_level=9)
    else:
        a = np.round(a * (levels - 1)) * (255.0 / (levels - 1))  # `levels` gray levels; 256: exact 8-bit
        Image.fromarray(np.round(a).astype(np.uint8), mode="L").save(buf, format="png", compress_level=9)
    return buf.getvalue()


def figure_frame(fig: Figure, dpi: int = 80, colors: int = 64, tight: bool = True) -> bytes:
    """A figure as a small PNG frame: rendered at `dpi`, reduced to a palette of `colors` colours."""
    from PIL import Image

    img = Image.open(io.BytesIO(figure_png(fig, dpi=dpi, tight=tight))).convert("RGB")
    buf = io.BytesIO()
    img.quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(buf, format="png", compress_level=9)
    return buf.getvalue()


def has_stack() -> bool:
    """True when ipywidgets offers `Stack` (version 8): frames linked in the browser are possible."""
    import ipywidgets

    return hasattr(ipywidgets, "Stack")


def linked_frames(controls: Sequence[Control], frames: Mapping[tuple[int, ...], bytes], caption: str,
                  width: str | None = None) -> tuple[Any, dict]:
    """Sliders above the frames and a caption below; returns (box, {name: slider}).

    ipywidgets 8: nested Stacks of frames, linked to the sliders in the browser; ipywidgets 7: one
    Image whose value a kernel callback sets when a slider moves.
    frames[(i, j, ...)] is the PNG shown when slider 0 sits at position i, slider 1 at j, ...;
    caption says in words what every frame shows (on the book's pages book/_static/funml-widgets.js
    makes it, with the sliders' current values, the alt text of the frame shown).
    """
    import ipywidgets as w

    sliders = {}
    for c in controls:
        sliders[c.name] = w.SelectionSlider(
            options=list(zip(c.labels, c.values)), index=c.index, description=c.description,
            continuous_update=True, style={"description_width": "initial"},
            layout=w.Layout(width="22rem", max_width="100%"))
    order = list(sliders.values())
    # one layout model for every frame; never wider than the column (phones)
    shared = w.Layout(width=width, max_width="100%", height="auto")
    links = []

    def image(key: tuple[int, ...]) -> Any:
        frame = w.Image(value=frames[key], format="png", layout=shared)
        if width:  # drawn at native resolution: the page scales it up without smoothing
            frame.add_class(EXPLORER_CLASS + "-pixels")
        return frame

    def stack(prefix: tuple[int, ...]) -> Any:
        depth = len(prefix)
        if depth == len(controls):
            return image(prefix)
        children = [stack(prefix + (i,)) for i in range(len(controls[depth].values))]
        node = w.Stack(children, selected_index=controls[depth].index)
        links.append(w.jsdlink((order[depth], "index"), (node, "selected_index")))
        return node

    if hasattr(w, "Stack"):
        view = stack(())
    else:  # ipywidgets 7: no Stack; the kernel swaps the one Image's frame
        view = image(tuple(c.index for c in controls))

        def redraw(change: Any = None) -> None:
            view.value = frames[tuple(s.index for s in order)]

        for slider in order:
            slider.observe(redraw, names="index")
    label = w.HTML(caption)
    label.add_class(EXPLORER_CLASS + "-caption")
    box = w.VBox([w.HBox(order, layout=w.Layout(flex_flow="row wrap")), view, label])
    box.add_class(EXPLORER_CLASS)
    box._funml_links = links  # keep the link widgets referenced for as long as the box
    return box, sliders


def selected(box: Any) -> Any:
    """The Image widget the box currently shows (follows the Stacks' selected_index down the
    nesting; with ipywidgets 7 the box's one Image)."""
    node = box.children[1]
    while hasattr(node, "selected_index"):
        node = node.children[node.selected_index]
    return node


def static_mode() -> bool:
    """True when explorers show only their static figure (FUNML_STATIC set to 1, true or yes)."""
    return env_flag(STATIC_ENV)


class Explorer:
    """A static figure plus sliders over precomputed frames (one frame per grid point of the controls).

    static() builds the static Figure; render() returns {index tuple: (PNG bytes, numbers drawn)};
    caption says what every frame shows. `controls` ({name: slider}) exists once `widget` was built.
    """

    def __init__(self, static: Callable[[], Figure], controls: Sequence[Control], render: Frames,
                 caption: str, width: str | None = None):
        self._make_static, self._render, self.caption, self._width = static, render, caption, width
        self.grid = list(controls)
        self._static: Figure | None = None
        self._frames: dict[tuple[int, ...], tuple[bytes, Any]] | None = None
        self._widget: Any = None
        self.controls: dict[str, Any] = {}

    @property
    def static_figure(self) -> Figure:
        """The figure shown everywhere, in print and without JavaScript too."""
        if self._static is None:
            self._static = self._make_static()
        return self._static

    @property
    def frames(self) -> dict[tuple[int, ...], tuple[bytes, Any]]:
        """{(i, j, ...): (PNG, numbers)} for every grid position of the controls, computed once."""
        if self._frames is None:
            self._frames = self._render()
        return self._frames

    def values_at(self, index: tuple[int, ...]) -> dict[str, Any]:
        """The control values at a grid position, e.g. {"rho": 0.05}."""
        return {c.name: c.values[i] for c, i in zip(self.grid, index)}

    @property
    def widget(self) -> Any:
        """Sliders above the frames (linked in the browser with ipywidgets 8, through the kernel with
        ipywidgets 7); built on first use."""
        if self._widget is None:
            _colab_widget_support()
            pngs = {k: png for k, (png, _) in self.frames.items()}
            self._widget, self.controls = linked_frames(self.grid, pngs, self.caption, width=self._width)
        return self._widget

    def values(self) -> dict[str, Any]:
        """Current slider values, e.g. {"rho": 0.05}."""
        return {name: slider.value for name, slider in self.controls.items()}

    def index(self) -> tuple[int, ...]:
        """Current slider positions."""
        return tuple(slider.index for slider in self.controls.values())

    @property
    def last(self) -> Any:
        """The numbers drawn in the frame for the current slider values."""
        return self.frames[self.index()][1]

    def shown(self) -> bytes:
        """The PNG the widget shows now (with ipywidgets 8: follows the Stacks' selected_index)."""
        return bytes(selected(self.widget).value)

    def _ipython_display_(self) -> None:
        from IPython.display import Image, display

        display(Image(data=figure_frame(self.static_figure, dpi=100), format="png"))
        if static_mode():
            return
        why = widget_problem()
        if why is None:
            _ = self.frames  # errors of the frames themselves (a diverged model) are raised, not hidden
            try:
                widget = self.widget
            except Exception as err:  # a broken ipywidgets install: say so in one sentence
                why = f"ipywidgets failed to build the sliders ({type(err).__name__}: {err})"
        if why is None:
            display(widget)
        else:
            print(f"Sliders are not shown here: {why}; the figure above shows the same idea, "
                  f"and in Jupyter or Colab with ipywidgets >= {MIN_IPYWIDGETS} you also get sliders.")

    def __repr__(self) -> str:
        return f"Explorer(controls={[c.name for c in self.grid]}, frames={math.prod(len(c.values) for c in self.grid)})"


def widget_problem() -> str | None:
    """None when a live widget can be shown here; otherwise why not, as part of a sentence."""
    try:
        import ipywidgets
    except ModuleNotFoundError:
        return "ipywidgets is not installed"
    except Exception as err:  # broken, e.g. by a mismatched dependency
        return f"ipywidgets cannot be imported ({type(err).__name__}: {err})"
    version = str(getattr(ipywidgets, "__version__", "0"))
    if _release(version) < _release(MIN_IPYWIDGETS):
        return f"ipywidgets {version} is older than {MIN_IPYWIDGETS}"
    try:
        from IPython import get_ipython
    except Exception as err:
        return f"IPython cannot be imported ({type(err).__name__}: {err})"
    if getattr(get_ipython(), "kernel", None) is None:  # a terminal or plain Python: nothing draws widgets
        return "this Python runs without a Jupyter front end"
    return None


def _release(version: str) -> tuple[int, ...]:
    """'7.7.1' -> (7, 7, 1); '8.1.0rc1' -> (8, 1, 0); digits after the number are ignored."""
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _colab_widget_support() -> None:
    # Colab renders ipywidgets 8 only through its custom widget manager; harmless with ipywidgets 7
    if "google.colab" in sys.modules:
        from google.colab import output
        if hasattr(output, "enable_custom_widget_manager"):  # absent from older Colab runtimes
            output.enable_custom_widget_manager()
