"""The site's configuration: offline assets, launch button target, landing page (no browser here)."""
from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
from coursekit import check_site  # noqa: E402


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sphinx(config: dict) -> dict:
    return config["sphinx"]["config"]


@pytest.fixture(scope="module")
def package() -> dict:
    return json.loads((ROOT / "package.json").read_text(encoding="utf-8"))


def vendored_sources(package: dict) -> dict[str, str]:
    """Destination file under book/_static/vendor -> the node_modules file `npm run vendor` copies there."""
    script = package["scripts"]["vendor"]
    env = dict(re.findall(r"\b([A-Z])=(\S+)", script))
    copies: dict[str, str] = {}
    for command in script.split("&&"):
        words = shlex.split(command)
        if not words or words[0] != "cp":
            continue
        paths = [w for w in words[1:] if not w.startswith("-")]
        *sources, dest = [re.sub(r"\$([A-Z])", lambda m: env[m.group(1)], p) for p in paths]
        for src in sources:
            copies[f"{dest.rstrip('/')}/{Path(src).name}"] = src
    return copies


def static_target(path: str) -> str:
    """Where Sphinx finds a relative mathjax_path / js file: under the html_static_path folder."""
    return f"book/_static/{path}"


def test_mathjax_is_a_vendored_file_from_npm(sphinx: dict, package: dict) -> None:
    path = sphinx["mathjax_path"]
    assert "://" not in path and not path.startswith("/"), path
    source = vendored_sources(package)[static_target(path)]
    assert source == "node_modules/mathjax/es5/tex-chtml.js"
    assert package["dependencies"]["mathjax"].startswith("3.")


def test_only_the_mathjax_files_the_pages_use_are_vendored(package: dict) -> None:
    # tex-chtml.js loads fonts and autoloaded TeX extensions relative to itself; only those the
    # chapters use are shipped (a missing one is an HTTP 404 in `make check-site`).
    copies = vendored_sources(package)
    fonts = [d for d in copies if d.startswith("book/_static/vendor/mathjax/output/chtml/fonts/woff-v2/")]
    assert "book/_static/vendor/mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff" in fonts
    assert 5 <= len(fonts) < 23  # MathJax ships 23
    assert copies["book/_static/vendor/mathjax/input/tex/extensions/boldsymbol.js"].endswith(
        "es5/input/tex/extensions/boldsymbol.js")  # the chapters write \boldsymbol
    script = package["scripts"]["vendor"]
    for unused in ("sre", "a11y", "all-packages", ".ttf", ".eot", ".svg"):
        assert unused not in script, unused


def test_axe_core_is_a_pinned_npm_dependency_for_the_audit(package: dict) -> None:
    from coursekit import site_checks

    assert re.fullmatch(r"\d+\.\d+\.\d+", package["dependencies"]["axe-core"])
    assert site_checks.AXE_JS == ROOT / "node_modules/axe-core/axe.min.js"


def test_book_target_keeps_the_explorers_and_merges_streams(sphinx: dict) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    book = re.search(r"^book:.*?(?=^\S)", makefile, re.S | re.M).group(0)
    # build_cache build runs jupyter-book build between preparing and recording the run keys
    assert "FUNML_STATIC=1" not in book and "build_cache build --" in book
    assert sphinx["nb_merge_streams"] is True
    assert sphinx["nb_render_markdown_format"] == "myst"  # $...$ in displayed Markdown is typeset
    check = re.search(r"^check-site:.*$", makefile, re.M).group(0)
    assert "assets" in check  # axe-core comes from node_modules


def test_widget_javascript_is_local(sphinx: dict, package: dict) -> None:
    widget_js = sphinx["nb_ipywidgets_js"]
    # order matters: require.js, then our fixes (they call require.config), then the manager
    assert list(widget_js) == ["vendor/requirejs/require.js", "funml-widgets.js",
                               "vendor/html-manager/embed-amd.js"]
    copies = vendored_sources(package)
    for path, attributes in widget_js.items():
        assert "http" not in path
        assert not any("http" in str(v) for v in attributes.values()), attributes
        assert static_target(path) in copies or (ROOT / static_target(path)).is_file(), \
            f"{path} is neither produced by `npm run vendor` nor a file in book/_static"
    assert copies[static_target("vendor/requirejs/require.js")] == "node_modules/requirejs/require.js"
    assert copies[static_target("vendor/html-manager/embed-amd.js")].endswith("html-manager/dist/embed-amd.js")


def test_widget_fixes_point_at_the_vendored_manager() -> None:
    js = (ROOT / "book/_static/funml-widgets.js").read_text(encoding="utf-8")
    assert '"vendor/html-manager/"' in js          # fonts next to the vendored embed-amd.js
    assert "__jupyter_widgets_assets_path__" in js
    assert "Hub" in js and "typesetPromise" in js   # MathJax 2 API used by ipywidgets -> MathJax 3


def test_npm_dependencies_are_pinned_and_locked(package: dict) -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    for name, version in package["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} must be pinned exactly, got {version}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


def test_no_cdn_urls_anywhere_in_the_config(config: dict) -> None:
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    for cdn in ("cdn.jsdelivr", "cdnjs", "unpkg.com", "polyfill.io"):
        assert cdn not in text


def test_static_files_are_under_book_static_not_a_top_level_static(sphinx: dict) -> None:
    # Jupyter Book adds every .js in a top-level _static/ to every page (that would be all of MathJax).
    assert sphinx["html_static_path"] == ["book/_static"]
    assert not (ROOT / "_static").exists()
    for css in sphinx["html_css_files"]:
        assert (ROOT / "book/_static" / css).is_file()


def test_vendored_assets_are_git_ignored_build_outputs() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "book/_static/vendor/" in ignored and "node_modules/" in ignored


def test_logo_and_favicon_exist(config: dict) -> None:
    for path in (config["logo"], config["html"]["favicon"]):
        data = (ROOT / path).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", path


def test_launch_button_points_at_the_repository_main_branch(config: dict) -> None:
    assert config["repository"]["branch"] == "main"
    assert config["repository"]["url"].startswith("https://github.com/")
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    colab = (ROOT / "coursekit" / "colab.py").read_text(encoding="utf-8")
    assert f'REPO_URL = "{config["repository"]["url"]}"' in colab
    assert 'BRANCH = "main"' in colab


def test_build_is_strict_and_executes(config: dict, sphinx: dict) -> None:
    # `cache` with the run key of coursekit/build_cache.py around it (make book prepares and records);
    # the cache lives under _build/, so a fresh clone executes every chapter
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["execute"]["cache"].startswith("_build/")
    book_recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\nbook:", 1)[1]
    assert "build_cache build -- -W -n" in book_recipe  # prepare, jupyter-book build, record
    assert config["execute"]["allow_errors"] is False
    assert sphinx["nb_execution_raise_on_error"] is True


def test_landing_page_says_what_and_how() -> None:
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    for needed in ("Sparse autoencoders", "Denoising autoencoders", "Variational autoencoders",
                   "Colab", "homework", "make book", "MNIST", "FUNML_DATA", "{tableofcontents}"):
        assert needed in intro, needed


def test_toc_pages_follow_the_toc(tmp_path: Path) -> None:
    (tmp_path / "book").mkdir()
    for name in ("intro.md", "01_a.ipynb", "02_b.ipynb", "refs.md"):
        (tmp_path / "book" / name).write_text("")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: Lecture\n    numbered: true\n    chapters:\n"
        "      - file: book/01_a\n      - file: book/02_b.ipynb\n"
        "  - caption: Appendix\n    chapters:\n      - file: book/refs\n      - file: book/missing\n")
    pages = check_site.toc_pages(tmp_path)
    assert [p.docname for p in pages] == ["book/intro", "book/01_a", "book/02_b", "book/refs", "book/missing"]
    assert [p.is_notebook for p in pages] == [False, True, True, False, False]
    assert [p.numbered for p in pages] == [False, True, True, False, False]
    assert pages[1].html == "book/01_a.html" and pages[4].source is None


def test_expected_figures_counts_what_myst_nb_renders_as_images(tmp_path: Path) -> None:
    png = {"image/png": "iVBOR", "text/plain": "<Figure>"}
    cells = [
        {"cell_type": "code", "metadata": {}, "outputs": [
            {"output_type": "display_data", "data": png},                      # a figure: counts
            {"output_type": "stream", "name": "stdout", "text": "hi"}]},
        {"cell_type": "code", "metadata": {}, "outputs": [
            {"output_type": "execute_result", "data": {"image/svg+xml": "<svg/>"}}]},   # counts
        {"cell_type": "code", "metadata": {}, "outputs": [                    # HTML wins over PNG
            {"output_type": "display_data", "data": {**png, "text/html": "<b>x</b>"}}]},
        {"cell_type": "code", "metadata": {"tags": ["remove-output"]}, "outputs": [
            {"output_type": "display_data", "data": png}]},
        {"cell_type": "markdown", "metadata": {}, "source": "![x](y.png)"},
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert check_site.expected_figures(path) == 2


def test_raw_tex_pattern() -> None:
    # issue 16: any $ or TeX command a reader sees outside MathJax's output and outside code
    for raw in ("$$x$$", r"\begin{align}", r"\(x\)", r"\[x\]", r"cost $\lambda = 1$ here", "$x$",
                r"the \mathbf{W} matrix", r"\frac{1}{2}", r"+ \operatorname{tr}(\Sigma)"):
        assert check_site.RAW_TEX.search(raw), raw
    for fine in ("a (b) [c]", "x_hat = 3", "ρ = 0.05", r"a line break \n"):
        assert not check_site.RAW_TEX.search(fine), fine


def test_machine_path_pattern() -> None:
    from coursekit.site_checks import MACHINE_PATH

    for bad in ("from IDX files in /work/shared/data/mnist", "/root/.cache/funml", 'src="/tmp/x.png"',
                "/home/ana/mnist", r"C:\Users\ana\mnist"):
        assert MACHINE_PATH.search(bad), bad
    for fine in ("https://github.com/home/x", "see _static/work/x.js", "a/tmp/b", "10/home/ratio", "/word"):
        assert not MACHINE_PATH.search(fine), fine


def test_alt_text_check_rejects_empty_alt_and_file_paths() -> None:
    from coursekit.site_checks import check_alt_text

    class Report(list):
        def add(self, page, message):
            self.append(message)

    def img(alt, output=True, widget=False):
        return {"src": "../_images/0950ac.png", "alt": alt, "output": output, "widget": widget}

    report = Report()
    check_alt_text("p.html", {"images": [img("../_images/0950ac.png"), img(""), img(None, widget=True, output=False),
                                         img("Digits and their reconstructions"), img("", output=False)]}, report)
    assert len(report) == 3 and "file path" in report[0] and "explorer frame" in report[2]


def test_page_weight_and_budgets(tmp_path: Path) -> None:
    from coursekit.site_checks import check_weight, page_weight

    class Report(list):
        def add(self, page, message):
            self.append(message)

    (tmp_path / "book").mkdir()
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "a.png").write_bytes(b"x" * 1_600_000)
    state = '{"state": {}}'
    (tmp_path / "book" / "p.html").write_text(
        f'<img src="../_images/a.png"><script type="application/vnd.jupyter.widget-state+json">{state}</script>')
    seen = {"images": [{"src": "../_images/a.png"}, {"src": "../_images/a.png"}, {"src": "blob:x"}]}
    weight = page_weight(tmp_path, "book/p.html", seen)
    assert weight["images"] == 1_600_000 and weight["widgets"] == len(state)
    report = Report()
    check_weight("book/p.html", weight, True, report)
    check_weight("book/p.html", weight, False, report)   # the budget is per chapter page
    check_weight("book/p.html", {"html": 1, "images": 1, "widgets": 1_200_000}, False, report)
    assert len(report) == 2 and "1.60 MB of images" in report[0] and "widget state" in report[1]


def test_repeated_inline_scripts_are_dropped_once() -> None:
    # Sphinx 7.4 writes a late-registered inline script twice (filename None and ''); see book/_ext.
    from sphinx.builders.html._assets import _JavaScript

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import funml_site

    thebe = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript(None, body=thebe), _JavaScript("_static/a.js"),
               _JavaScript("", body=thebe), _JavaScript("", body="var other = 1")]
    context = {"script_files": scripts}
    funml_site.drop_repeated_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] is scripts
    assert [(js.filename, js.attributes.get("body")) for js in scripts] == [
        (None, thebe), ("_static/a.js", None), ("", "var other = 1")]


def test_colab_link_expected_by_the_checker() -> None:
    assert check_site.colab_prefix(ROOT) == (
        "https://colab.research.google.com/github/funml-course/autoencoder-extensions/blob/main/")


def test_citation_list_loses_its_list_role() -> None:
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import funml_site

    body = '<div role="list" class="citation-list"><div class="citation" role="doc-biblioentry">x</div></div>'
    context = {"body": body}
    funml_site.drop_list_role_of_citations(None, "book/references", "page.html", context, None)
    assert context["body"].startswith('<div class="citation-list">')


def test_scroll_boxes_are_focusable_and_display_math_scrolls(sphinx: dict) -> None:
    assert "funml.js" in sphinx["html_js_files"]
    js = (ROOT / "book/_static/funml.js").read_text(encoding="utf-8")
    assert 'setAttribute("tabindex", "0")' in js
    css = (ROOT / "book/_static/funml.css").read_text(encoding="utf-8")
    assert re.search(r"div\.math,\s*mjx-container\[jax=\"CHTML\"\]\[display=\"true\"\] \{[^}]*overflow-x: auto", css)


def test_explorer_widget_outputs_are_not_wrapped_in_the_cells_figure() -> None:
    # An explorer cell shows a static figure and a widget; only the figure gets the cell's caption and
    # name (else the strict build fails on "Duplicate explicit target name"). Built and checked on a
    # fixture book; here: the renderer marks widget outputs and then hands out no figure options.
    from myst_nb.sphinx_ import SphinxNbRenderer

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import funml_site

    funml_site.keep_figures_off_widgets()
    funml_site.keep_figures_off_widgets()  # idempotent: wraps myst-nb's methods once
    assert SphinxNbRenderer._funml_figures_off_widgets is True

    class Fake:
        _funml_widget_output = True

    assert SphinxNbRenderer.get_cell_level_config(Fake(), "render_figure_options", {}) is None
