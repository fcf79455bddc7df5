"""What a student must not find on the term edition's site: the chapters' solutions and hidden tests.

`collect_secrets(root)` reads the source chapters (_toc.yml order) and keeps what the student version
(coursekit.homework.student_version) takes out: the code between BEGIN/END SOLUTION, whole answer
cells (code or prose), the solution explanations, MyST {solution} blocks, hidden tests and the
hand-graded answers' rubrics. A snippet is matched as a run of words, not as raw text, so HTML tags,
syntax-highlighting spans, entities, JSON escapes and Markdown emphasis do not hide it: each secret
region becomes its runs of NGRAM consecutive words (a shorter region: all of it, from MIN_WORDS
words) that appear nowhere in the public text (the student versions, the outputs of unchanged cells).
Lines such as `import torch` or `seed_everything(seed)` are public and so never count.

`scan_site(folder, secrets)` then reads EVERY file of a built site (html, js, json, txt, ipynb, css,
searchindex.js; images are skipped) and reports each secret found; searchindex.js is also searched
for the secret words (stemmed as Sphinx stems them), since it stores single words rather than text.
`scan_notebooks` does the same for the notebooks the site's buttons open. `marker_problems(folder)`
reports harness markers (NBVAL_..., BEGIN/END SOLUTION, BEGIN/END HIDDEN TESTS) in the code cells
of the rendered pages (issue 19), in either edition.
"""
from __future__ import annotations

import functools
import html
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import yaml

from coursekit.homework import student_version
from coursekit.markers import (BEGIN, BEGIN_HIDDEN, END, END_HIDDEN, EXERCISE_FENCE, SOLUTION_FENCE,
                               nbgrader_metadata, strip_solution_directives)
from coursekit.safe_io import read_notebook
from coursekit.toc import source_of, toc_entries

NGRAM = 8          # words in a run: long enough to be the solution's own, short enough to fit a line
MIN_WORDS = 3      # a shorter region (e.g. `predicted_rank = 10`) counts as a whole from 3 words
SECRET_WORD = 7    # searchindex.js: words of at least 7 letters that only the solutions use
BINARY = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico", ".woff", ".woff2", ".ttf", ".eot", ".otf",
          ".pdf", ".zip", ".gz", ".pickle", ".doctree", ".mp4"}
WORD = re.compile(r"[a-z0-9]+")
JSON_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|[nrtbf\"/\\])")
TAG = re.compile(r"<[^>]*>")
# A harness marker as a comment in displayed code (any case or spacing, as nbgrader and nbval allow).
MARKER = re.compile(r"#+\s*(?:NBVAL_[A-Z_]+|(?:BEGIN|END)\s+(?:SOLUTION|HIDDEN\s+TESTS))", re.IGNORECASE)


def words(text: str) -> list[str]:
    """Lower-case runs of letters and digits: what is left of text whatever markup surrounds it."""
    return WORD.findall(text.lower())


def _unescape_json(match: re.Match) -> str:
    code = match.group(1)
    if code[0] == "u":
        return chr(int(code[1:], 16))
    return {"n": " ", "r": " ", "t": " ", "b": " ", "f": " "}.get(code, code)


def readable_text(path: Path, raw: str) -> str:
    """The text of a site file as a reader (or a search) would get it: tags, entities, escapes undone."""
    if path.suffix == ".ipynb":
        try:
            return notebook_text(nbformat.reads(raw, as_version=4))
        except Exception:  # not a notebook after all: search it as text
            pass
    text = JSON_ESCAPE.sub(_unescape_json, raw) if path.suffix != ".html" else raw
    return html.unescape(TAG.sub(" ", text))


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """Every source, output text and metadata string of a notebook, one after the other."""
    parts = [json.dumps(nb.get("metadata", {}))]
    for cell in nb.cells:
        parts.append(cell.source)
        parts.append(json.dumps(cell.get("metadata", {})))
        for out in cell.get("outputs", []):
            parts.append(output_text(out))
    return "\n".join(parts)


def output_text(out: dict) -> str:
    """The text an output shows (stream, error, text/* and JSON data; images are skipped)."""
    if out.get("output_type") == "stream":
        return "".join(out.get("text", ""))
    if out.get("output_type") == "error":
        return "\n".join([out.get("ename", ""), out.get("evalue", ""), *out.get("traceback", [])])
    texts = []
    for mime, value in (out.get("data") or {}).items():
        if mime.startswith("text/") or mime.endswith("json"):
            texts.append(value if isinstance(value, str) else
                         "".join(value) if isinstance(value, list) else json.dumps(value))
    return "\n".join(texts)


# ----------------------------------------------------------------------------------------------
# The secrets of the source chapters
# ----------------------------------------------------------------------------------------------

@dataclass
class Secrets:
    """Word runs (tuples) and single words that only the solutions contain, with where each is from."""
    runs: dict[tuple[str, ...], str] = field(default_factory=dict)
    words: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.runs)


def _regions(source: str, begin: str, end: str) -> list[str]:
    """The text between each begin/end marker line pair (case-insensitive, markers excluded)."""
    found, current = [], None
    for line in source.split("\n"):
        upper = line.upper()
        if begin in upper:
            current = []
        elif end in upper and current is not None:
            found.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:  # an unclosed region runs to the end of the cell
        found.append("\n".join(current))
    return found


def _only_gate(source: str) -> bool:
    """A markdown cell that holds only solution gate fences and their options (no solution text)."""
    for line in source.split("\n"):
        s = line.strip()
        if s and not (SOLUTION_FENCE.match(line) or re.fullmatch(r"`{3,}|:{3,}", s) or re.match(r":[\w-]+:", s)):
            return False
    return True


def _cut(source: str, begin: str, end: str) -> str:
    """source without its begin/end regions (marker lines included)."""
    kept, inside = [], False
    for line in source.split("\n"):
        upper = line.upper()
        if begin in upper:
            inside = True
        elif end in upper and inside:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def split_chapter(nb: nbformat.NotebookNode, name: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """([(where, secret text)], {cell id: public text}) of a chapter.

    What is secret is decided from the chapter's own markup, not from what the student version kept:
    a student version that let a line through must not make that line public. The student version
    only adds cells to the secrets (solution text it drops)."""
    student, _ = student_version(nb, name)
    kept = {c.get("id") for c in student.cells}
    secrets, public = [], {}
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}"
        rubric = (cell.get("metadata", {}).get("funml") or {}).get("rubric")
        if isinstance(rubric, str) and rubric.strip():
            secrets.append((f"{where} (rubric)", rubric))
        secrets += [(f"{where} (hidden tests)", r) for r in _regions(cell.source, BEGIN_HIDDEN, END_HIDDEN)]
        text = _cut(cell.source, BEGIN_HIDDEN, END_HIDDEN)
        exercise = cell.cell_type == "markdown" and any(EXERCISE_FENCE.match(x) for x in text.split("\n"))
        if nbgrader_metadata(cell).get("solution"):
            regions = _regions(text, BEGIN, END) if cell.cell_type == "code" else []
            if regions:
                secrets += [(f"{where} (solution code)", r) for r in regions]
                public[cell.get("id")] = _cut(text, BEGIN, END)
            else:
                secrets.append((f"{where} (answer)", text))
            continue
        if cell.get("id") not in kept and not exercise:
            if not (cell.cell_type == "markdown" and _only_gate(text)):
                secrets.append((f"{where} (solution text)", text))
            continue
        if cell.cell_type == "markdown":
            stripped, removed = strip_solution_directives(text)
            if removed:
                shown = set(stripped.split("\n"))
                secrets.append((f"{where} (solution block)",
                                "\n".join(line for line in text.split("\n") if line not in shown)))
                text = stripped
        public[cell.get("id")] = _cut(text, BEGIN, END)
    return secrets, public


def collect_secrets(root: str | Path, executed_dir: str | Path | None = None,
                    toc_file: str | Path | None = None) -> Secrets:
    """The secrets of every chapter that _toc.yml lists (see the module docstring)."""
    root = Path(root)
    regions: list[tuple[str, str]] = []
    chapters_public, pages_public = [], []
    for entry in toc_entries(toc_file or root / "_toc.yml"):
        path = source_of(root, entry.docname)
        if path is None:
            raise FileNotFoundError(f"_toc.yml lists {entry.docname}, but {root} has no such source file")
        if path.suffix != ".ipynb":
            pages_public.append(path.read_text(encoding="utf-8"))
            continue
        nb = read_notebook(path)
        found, public = split_chapter(nb, str(path.relative_to(root)))
        regions += found
        chapters_public += public.values()
        executed = Path(executed_dir) / (entry.docname + ".ipynb") if executed_dir is not None else None
        if executed is not None and executed.is_file():
            # outputs of the public cells that the executed notebook holds unchanged
            for cell in read_notebook(executed).cells:
                if public.get(cell.get("id")) == cell.source and not nbgrader_metadata(cell):
                    chapters_public += [output_text(out) for out in cell.get("outputs", [])]
    config = root / "_config.yml"   # the bibliography's titles are on the references page too
    if config.is_file():
        for bib in (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("bibtex_bibfiles") or []:
            if (root / bib).is_file():
                pages_public.append((root / bib).read_text(encoding="utf-8"))
    public = words("\n".join(chapters_public))
    public_joined = " " + " ".join(public) + " "
    public_words = set(public) | set(words("\n".join(pages_public)))
    secrets = Secrets()
    # a search index stores stems: a secret word is one whose stem no public word shares
    public_stems = {_stem(word) for word in public_words}
    for where, text in regions:
        toks = words(text)
        runs = [tuple(toks[i:i + NGRAM]) for i in range(len(toks) - NGRAM + 1)] if len(toks) >= NGRAM \
            else ([tuple(toks)] if len(toks) >= MIN_WORDS else [])
        for run in runs:
            if f" {' '.join(run)} " not in public_joined:
                secrets.runs.setdefault(run, where)
        for word in toks:
            if len(word) >= SECRET_WORD and word.isalpha() and word not in public_words \
                    and _stem(word) not in public_stems:
                secrets.words.setdefault(word, where)
    return secrets


# ----------------------------------------------------------------------------------------------
# Searching a site and notebooks
# ----------------------------------------------------------------------------------------------

def find_runs(text: str, secrets: Secrets) -> list[tuple[tuple[str, ...], str]]:
    """The secret runs that occur in `text` (as consecutive words), with where each is from."""
    toks = words(text)
    present = set(toks)
    candidates = [run for run in secrets.runs if all(t in present for t in run)]
    found = []
    for n in sorted({len(run) for run in candidates}):
        grams = set(zip(*(toks[i:] for i in range(n))))
        found += [(run, secrets.runs[run]) for run in candidates if len(run) == n and run in grams]
    return found


def search_index_words(raw: str) -> set[str]:
    """The words (terms and title words) stored in a Sphinx searchindex.js."""
    start, end = raw.find("("), raw.rfind(")")
    try:
        data = json.loads(raw[start + 1:end])
    except ValueError:
        return set(words(raw))
    found = set((data.get("terms") or {}).keys()) | set((data.get("titleterms") or {}).keys())
    for title in data.get("titles") or []:
        found |= set(words(title))
    return found


@functools.lru_cache(maxsize=None)
def _stemmer():
    try:
        from sphinx.search.en import SearchEnglish
        return SearchEnglish({}).stem
    except Exception:  # a Sphinx without its English stemmer: compare the words themselves
        return str.lower


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer()(word)


def scan_text(name: str, path: Path, raw: str, secrets: Secrets) -> list[str]:
    """Problems for one file's text: each secret run it contains (and secret words of a search index)."""
    problems = []
    for run, where in find_runs(readable_text(path, raw), secrets)[:5]:
        problems.append(f"{name}: solution material of {where} found: {' '.join(run)!r}")
    if path.name == "searchindex.js":
        stored = search_index_words(raw)
        for word, where in secrets.words.items():
            if word in stored or _stem(word) in stored:
                problems.append(f"{name}: the search index holds {word!r}, a word only {where} uses")
    return problems


def scan_site(folder: str | Path, secrets: Secrets) -> list[str]:
    """Every file of a built site searched for the secrets; a list of problems (empty: nothing leaks)."""
    folder = Path(folder)
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix.lower() in BINARY:
            continue
        raw = path.read_bytes().decode("utf-8", errors="replace")
        problems += scan_text(str(path.relative_to(folder)), path, raw, secrets)
    return problems


def scan_notebooks(notebooks: dict[str, str], secrets: Secrets) -> list[str]:
    """{name: notebook JSON text} (e.g. the published student notebooks) searched for the secrets."""
    problems = []
    for name, raw in notebooks.items():
        problems += scan_text(name, Path(name), raw, secrets)
    return problems


class _CellInputText(HTMLParser):
    """Collects the text inside <div class="... cell_input ..."> elements (a page's displayed code)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0       # open <div>s inside the current cell_input, itself included
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag != "div":
            return
        if self.depth:
            self.depth += 1
        elif "cell_input" in (dict(attrs).get("class") or "").split():
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self.depth:
            self.depth -= 1
            if not self.depth:
                self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def displayed_code(page_html: str) -> str:
    parser = _CellInputText()
    parser.feed(page_html)
    return "".join(parser.parts)


def marker_problems(folder: str | Path) -> list[str]:
    """Harness markers shown in the code cells of any page of a built site (they belong in notebooks)."""
    folder = Path(folder)
    problems = []
    for path in sorted(folder.rglob("*.html")):
        code = displayed_code(path.read_text(encoding="utf-8", errors="replace"))
        for match in list(MARKER.finditer(code))[:3]:
            line = code[code.rfind("\n", 0, match.start()) + 1:].split("\n", 1)[0].strip()
            problems.append(f"{path.relative_to(folder)}: harness marker shown in a code cell: {line[:80]!r}")
    return problems
