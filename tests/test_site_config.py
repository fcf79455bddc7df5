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


def test_mathjax_fonts_and_extensions_are_vendored_next_to_it(package: dict) -> None:
    # MathJax loads its fonts and TeX extensions relative to its own script.
    copies = vendored_sources(package)
    assert copies["book/_static/vendor/mathjax/output/chtml/fonts/woff-v2"].endswith("es5/output/chtml/fonts/woff-v2")
    assert copies["book/_static/vendor/mathjax/input/tex/extensions"].endswith("es5/input/tex/extensions")


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
    assert config["execute"]["execute_notebooks"] == "force"
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
    for raw in ("$$x$$", r"\begin{align}", r"\(x\)", r"\[x\]", r"cost $\lambda = 1$ here"):
        assert check_site.RAW_TEX.search(raw), raw
    for fine in ("costs $5 and $6", "a (b) [c]", "x_hat = 3"):
        assert not check_site.RAW_TEX.search(fine), fine


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
