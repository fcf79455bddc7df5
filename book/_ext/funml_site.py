"""Sphinx extension for the book's HTML pages (listed under sphinx.local_extensions in _config.yml).

Sphinx 7.4 (the version Jupyter Book 1.x requires) writes an inline <script> twice when an extension
registers it after the builder started: once with filename None and once with ''. sphinx-thebe's
`const THEBE_JS_URL = ...` is such a script, so every page threw "Identifier 'THEBE_JS_URL' has
already been declared". Fixed upstream in sphinx-doc/sphinx#13402 (Sphinx 8.2); until Jupyter Book
allows that Sphinx, drop the repeats here. coursekit/check_site.py fails on any console error.
"""
from __future__ import annotations

from typing import Any

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


def setup(app: Sphinx) -> dict[str, Any]:
    # late priority: after myst-nb and the themes have added their per-page scripts
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
