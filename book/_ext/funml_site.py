"""Sphinx extension for the book's HTML pages (listed under sphinx.local_extensions in _config.yml).

Sphinx 7.4 (the version Jupyter Book 1.x requires) writes an inline <script> twice when an extension
registers it after the builder started: once with filename None and once with ''. sphinx-thebe's
`const THEBE_JS_URL = ...` is such a script, so every page threw "Identifier 'THEBE_JS_URL' has
already been declared". Fixed upstream in sphinx-doc/sphinx#13402 (Sphinx 8.2); until Jupyter Book
allows that Sphinx, drop the repeats here. coursekit/check_site.py fails on any console error.
It also drops the role="list" Sphinx gives the citation list of the references page (its children
are not list items, a critical accessibility violation for axe-core), and keeps myst-nb's figure
(caption, name, number) on an explorer cell's static figure only: an explorer (funml_lib.widgets)
displays two outputs, its static figure and its widget, and myst-nb would wrap each in the cell's
figure, numbering it twice and failing the strict build ("Duplicate explicit target name").

Harness markers (`# NBVAL_CHECK_OUTPUT`, `### BEGIN/END SOLUTION`, `### BEGIN/END HIDDEN TESTS`) are
for nbval and nbgrader: they stay in the notebooks but are dropped from the code a page displays
(issue 19). In the term edition (`funml_edition = "term"`, set by coursekit.edition) a page offers no
source download (the site has no _sources/) and its repository button opens the branch its Colab
button opens, where the student notebooks are published.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx


def drop_repeated_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Keep the first of several <script> assets with the same file (None == ''), priority and attributes."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple] = set()
    unique = []
    for js in scripts:
        attributes = getattr(js, "attributes", {})
        key = (getattr(js, "filename", js) or "", getattr(js, "priority", 500),
               tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # in place: it is the builder's own list


def drop_list_role_of_citations(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Sphinx marks the references page's citation list role="list" although its children are no list
    items (a screen reader announces an empty list; axe-core: aria-required-children, critical)."""
    body = context.get("body")
    if isinstance(body, str) and 'role="list" class="citation-list"' in body:
        context["body"] = body.replace('<div role="list" class="citation-list">', '<div class="citation-list">')


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def keep_figures_off_widgets() -> None:
    """Let myst-nb apply a cell's figure options (mystnb.figure) to every output but widget views."""
    from myst_nb import sphinx_

    cls = sphinx_.SphinxNbRenderer
    if getattr(cls, "_funml_figures_off_widgets", False):
        return
    render_outputs, get_config = cls._render_nb_cell_code_outputs, cls.get_cell_level_config

    class Marked(list):
        """The outputs; iterating marks on the renderer whether the current one is a widget view."""

        def __init__(self, renderer: Any, outputs: list) -> None:
            super().__init__(outputs)
            self.renderer = renderer

        def __iter__(self):
            for output in list.__iter__(self):
                self.renderer._funml_widget_output = WIDGET_VIEW in (output.get("data") or {})
                yield output
            self.renderer._funml_widget_output = False

    def _render_nb_cell_code_outputs(self: Any, token: Any, outputs: list) -> None:
        return render_outputs(self, token, Marked(self, outputs))

    def get_cell_level_config(self: Any, field: str, cell_metadata: dict, line: int | None = None) -> Any:
        if field == "render_figure_options" and getattr(self, "_funml_widget_output", False):
            return None
        return get_config(self, field, cell_metadata, line)

    cls._render_nb_cell_code_outputs = _render_nb_cell_code_outputs
    cls.get_cell_level_config = get_cell_level_config
    cls._funml_figures_off_widgets = True


# A line that is only a harness marker comment, or such a comment at the end of a code line. Case and
# spacing are free, as nbgrader and nbval are lenient about them.
MARKER_COMMENT = r"#+[ \t]*(?:NBVAL_[A-Z_]+|(?:BEGIN|END)[ \t]+(?:SOLUTION|HIDDEN[ \t]+TESTS))[ \t]*"
MARKER_LINE = re.compile(rf"^[ \t]*{MARKER_COMMENT}$", re.IGNORECASE)
MARKER_TAIL = re.compile(rf"[ \t]+{MARKER_COMMENT}$", re.IGNORECASE)


def drop_marker_lines(code: str) -> str:
    """The code without its harness-marker lines (and trailing marker comments); the rest as it was."""
    kept = []
    for line in code.split("\n"):
        if MARKER_LINE.match(line):
            continue
        kept.append(MARKER_TAIL.sub("", line))
    return "\n".join(kept)


def strip_harness_markers(app: Sphinx, doctree: nodes.document) -> None:
    """Drop marker lines from the source of every notebook code cell (myst-nb's cell_code_source)."""
    for block in list(doctree.findall(nodes.literal_block)):
        parent = block.parent
        if not (isinstance(parent, nodes.container) and parent.get("nb_element") == "cell_code_source"):
            continue
        text = block.astext()
        code = drop_marker_lines(text)
        if code != text:
            block.rawsource = code
            block.children = []
            block += nodes.Text(code)


def term_edition_buttons(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Term edition: no source download (there is no _sources/ copy to serve), and the repository
    button opens the branch of the student notebooks rather than the repository's default branch."""
    if app.config.funml_edition != "term":
        return
    branch = (app.config.html_theme_options or {}).get("repository_branch") or ""

    def fix(buttons: list) -> list:
        kept = []
        for button in buttons:
            if button.get("label") in ("download-notebook-button", "download-source-button"):
                continue
            if button.get("label") == "source-repository-button" and branch:
                button = {**button, "url": button["url"].rstrip("/") + f"/tree/{branch}"}
            if isinstance(button.get("buttons"), list):
                button = {**button, "buttons": fix(button["buttons"])}
            kept.append(button)
        return kept

    if isinstance(context.get("header_buttons"), list):
        context["header_buttons"][:] = fix(context["header_buttons"])


def setup(app: Sphinx) -> dict[str, Any]:
    keep_figures_off_widgets()
    app.add_config_value("funml_edition", "full", "html", [str])
    # Sphinx re-reads every page when an "env" config value changed, but not when a local extension's
    # code did: this value does, so a cached doctree never keeps what an older version left on a page.
    app.add_config_value("funml_site_source", hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
                         "env", [str])
    app.connect("doctree-read", strip_harness_markers)
    app.connect("html-page-context", term_edition_buttons, priority=950)
    # late priority: after myst-nb and the themes have added their per-page scripts
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    app.connect("html-page-context", drop_list_role_of_citations)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
