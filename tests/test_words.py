"""The book's words about itself are checked like its numbers (issue 19).

Claims cells check what a page says about its run; this module checks what the pages say about
the book itself, so that a renamed function or a removed make target fails `make test`:

(a) every name in backticks in README.md, book/*.md and the chapters' Markdown resolves: a
    `funml_lib.x` / `coursekit.x` / `torch.x` attribute exists, a function written as `name(...)`
    or a snake_case name is defined by the library, the course tools or a chapter's code, a
    file path exists, `make <target>` is a target of the Makefile and `python -m <module>` finds
    the module (commands in fenced code blocks too);
(b) what pages say they contain: no page says that the explorers are static, or need a running
    Python, while `make book` builds them live; "N exercises" matches the exercise markers; the
    instructors' points table matches the chapters' grading metadata; a sentence saying that a
    chapter "reuses" a function names one that chapter's code calls;
(c) citations: every {cite} key is in book/references.bib, and a citation written as text
    ("Vincent et al. (2008)", "Kingma & Welling, 2014") needs an entry with that first author
    and year.
Each check is a function of the text, so the crafted examples below prove that it fails on the
mistakes it is meant to catch (the review of 2026-12-04 found each of them in the book).
"""
from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import pkgutil
import re
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest

from coursekit.toc import chapter_notebooks

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
BIB = BOOK / "references.bib"
CHAPTERS = chapter_notebooks(ROOT)

# Paths the prose names that are made by a command, live outside the repository or are
# placeholders: they cannot exist in a fresh clone, so they are not looked up.
GENERATED = ("_build", "_sources", "course", "homework", "submitted", "release", "source/",
             "autograded", "feedback", "/tmp", "~", ".venv", "../")
GENERATED_FILES = {"grades.csv", "gradebook.db", "nbgrader_config.py", "example.ipynb",
                   "scores.json"}
# pytorch/examples (chapter 5 compares with its vae/main.py); torchvision's layout of a data folder
EXTERNAL_FILES = {"vae/main.py", "pytorch/examples", "MNIST/raw"}
PLACEHOLDERS = {"fn"}                   # `fn(rho, rho_hat) -> ...` in the instructors' table
# nbgrader's own metadata keys and the named groups of its zip_collect file-name pattern
NBGRADER_KEYS = {"grade_id", "schema_version", "test_parameters", "grade", "solution",
                 "locked", "points", "student_id", "file_id"}
MODULE_ROOTS = ("funml_lib", "coursekit", "torch", "numpy", "math", "functools", "nbgrader",
                "papermill", "nbformat")
FILE_ENDINGS = (".py", ".md", ".ipynb", ".yml", ".yaml", ".toml", ".json", ".cfg", ".txt",
                ".js", ".sh", ".bib", ".css", ".db", ".csv")


# ---------------------------------------------------------------------------- sources

def _markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return path.read_text(encoding="utf-8")


def prose_sources() -> dict[str, str]:
    """name -> Markdown of README.md, every book/*.md and every chapter's Markdown cells."""
    files = [ROOT / "README.md", *sorted(BOOK.glob("*.md")), *CHAPTERS]
    return {str(p.relative_to(ROOT)): _markdown_of(p) for p in files}


def split_fences(text: str) -> tuple[str, list[str]]:
    """(prose, the bodies of fenced code blocks). A directive's body (:::{grid-item-card},
    ```{note}) is prose and stays in it; only its fences and option lines are dropped."""
    prose, blocks, block = [], [], []
    code_fence, directives = None, []        # the open code fence; the open directive fences
    for line in text.splitlines():
        stripped = line.strip()
        if code_fence is not None:
            if stripped.startswith(code_fence) and not stripped[len(code_fence):].strip():
                blocks.append("\n".join(block))
                code_fence = None
            else:
                block.append(line)
            continue
        fence = re.match(r"^(`{3,}|~{3,}|:{3,})(.*)$", stripped)
        if fence and directives and fence.group(1) == directives[-1] and not fence.group(2).strip():
            directives.pop()
            continue
        if fence and (fence.group(2).lstrip().startswith("{") or fence.group(1)[0] == ":"):
            directives.append(fence.group(1))
            continue
        if fence:
            code_fence, block = fence.group(1), []
            continue
        if directives and re.match(r"^:[\w-]+:", stripped):
            continue                         # a directive's option line
        prose.append(line)
    return "\n".join(prose), blocks


def code_spans(prose: str) -> list[str]:
    """Inline code spans that are not the argument of a MyST role ({ref}`...`, {cite}`...`)."""
    spans = []
    for m in re.finditer(r"(\{[\w:-]+\})?(`+)(.+?)\2", prose, flags=re.S):
        if m.group(1) is None:
            spans.append(m.group(3).strip())
    return spans


def sentences(prose: str) -> list[str]:
    """Sentences of the prose; a paragraph, a table row, a list item or a heading ends one."""
    blocks = re.split(r"\n\s*\n|\n(?=\s*(?:\||[-*+] |\d+\. |#))", prose)
    out = []
    for block in blocks:
        flat = re.sub(r"\s+", " ", block)
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z(*`])", flat) if s.strip()]
    return out


# ---------------------------------------------------------------------------- what exists

@lru_cache(maxsize=None)
def makefile_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    names = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.M))
    return frozenset(n for n in names if not n.startswith("."))


def _submodules(package: str, pkg) -> list:
    out = []
    for info in pkgutil.walk_packages(pkg.__path__):
        if info.name.startswith("_"):
            continue
        try:
            out.append(importlib.import_module(f"{package}.{info.name}"))
        except ImportError:                  # an optional extra that is not installed
            continue
    return out


@lru_cache(maxsize=None)
def library_names() -> frozenset[str]:
    """Every public attribute of every module of funml_lib and coursekit (and the modules)."""
    names: set[str] = set()
    for package in ("funml_lib", "coursekit"):
        pkg = importlib.import_module(package)
        for module in [pkg] + _submodules(package, pkg):
            names.add(module.__name__.rsplit(".", 1)[-1])
            names.update(n for n in dir(module) if not n.startswith("_"))
    return frozenset(names)


@lru_cache(maxsize=None)
def member_names() -> frozenset[str]:
    """Methods and attributes of the library's classes and of torch.Tensor (`decode_logits`,
    `grad_fn`), and the functions of math and torch a formula may name (`exp(logvar / 2)`)."""
    import math

    import torch
    names = set(dir(torch.Tensor)) | set(dir(math)) | set(dir(torch))
    for package in ("funml_lib", "coursekit"):
        pkg = importlib.import_module(package)
        for module in _submodules(package, pkg):
            for obj in vars(module).values():
                if isinstance(obj, type) and obj.__module__ == module.__name__:
                    names.update(n for n in vars(obj) if not n.startswith("_"))
    return frozenset(n for n in names if not n.startswith("_"))


@lru_cache(maxsize=None)
def chapter_code_names() -> frozenset[str]:
    """Names a chapter's code defines, assigns, imports or takes as parameters."""
    names: set[str] = set()
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                               for line in cell.source.splitlines())
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ClassDef):
                    names.add(node.name)
                elif isinstance(node, ast.FunctionDef):
                    names.add(node.name)
                    names.update(a.arg for a in node.args.args)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
                elif isinstance(node, ast.alias):
                    names.add((node.asname or node.name).split(".")[0])
                elif isinstance(node, ast.keyword) and node.arg:
                    names.add(node.arg)
    from funml_lib.parameters import RANGES
    return frozenset(names | set(RANGES))


def resolve_dotted(name: str) -> bool:
    """True when `a.b.c` imports as a module or is an attribute of the longest importable prefix."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def code_call_names() -> dict[str, str]:
    """chapter stem -> the text of its code cells (for "reuses" sentences)."""
    out = {}
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        out[path.stem] = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return out


# ---------------------------------------------------------------------------- (a) names

def span_problem(span: str) -> str | None:
    """Why a code span names something that does not exist, or None."""
    words = span.split()
    if not words:
        return None
    if words[0] == "make" and len(words) > 1 and "=" not in words[1]:
        target = words[1]
        if not target.startswith("-") and target not in makefile_targets():
            return f"`{span}`: the Makefile has no target {target!r}"
        return None
    python_m = re.match(r"^(?:\S*/)?python3?\s+-m\s+([\w.]+)", span)
    if python_m:
        module = python_m.group(1)
        if importlib.util.find_spec(module.split(".")[0]) is None or \
                importlib.util.find_spec(module) is None:
            return f"`{span}`: no module {module!r}"
        return None
    if len(words) > 1 and not re.match(r"^[\w.]+\(", span):
        return None                          # a phrase or a shell command of another tool
    token = words[0] if len(words) == 1 else span
    call = re.match(r"^([A-Za-z_][\w.]*)\(", token)
    name = call.group(1) if call else token.rstrip(",;:")
    if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", name) and name.split(".")[0] in MODULE_ROOTS:
        return None if resolve_dotted(name) else f"`{span}`: {name} does not exist"
    if call and "." not in name:
        if hasattr(importlib.import_module("funml_lib"), name):
            return keyword_problem(span, getattr(importlib.import_module("funml_lib"), name))
        if name in PLACEHOLDERS or hasattr(builtins, name) or name in library_names() \
                or name in chapter_code_names() or name in member_names():
            return None
        return f"`{span}`: no function {name!r} in funml_lib, coursekit or a chapter"
    if re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", name):
        if name in library_names() or name in chapter_code_names() or name in NBGRADER_KEYS \
                or name in member_names():
            return None
        return f"`{span}`: {name!r} is defined nowhere (library, course tools, chapters)"
    return path_problem(name)


def keyword_problem(span: str, fn) -> str | None:
    """`fit(model, loss_fn, x, target=None, epochs=...)`: every keyword is a parameter of fn."""
    import inspect

    try:
        call = ast.parse(span.replace("...", "0"), mode="eval").body
        params = inspect.signature(fn).parameters
    except (SyntaxError, TypeError, ValueError):
        return None
    if not isinstance(call, ast.Call) or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    unknown = [k.arg for k in call.keywords if k.arg and k.arg not in params]
    return f"`{span}`: {fn.__name__} has no parameter {unknown}" if unknown else None


def path_problem(name: str) -> str | None:
    looks_like_path = ("/" in name or name.endswith(FILE_ENDINGS)) and " " not in name
    if not looks_like_path or re.search(r"[<>*]|\.\.\.|://|\{|\}|(^|/)NN_", name):
        return None
    if name.startswith(GENERATED) or name in GENERATED_FILES or name in EXTERNAL_FILES:
        return None
    if "." in name.split("/")[0] and "/" not in name and not name.endswith(FILE_ENDINGS):
        return None                          # a dotted name of another package
    if "/" not in name and name.endswith(".ipynb") and not re.match(r"\d\d_", name):
        return None                          # an example download or output name, not ours
    for base in (ROOT, BOOK):
        if (base / name.rstrip("/")).exists():
            return None
    return f"`{name}`: no such file or folder in the repository"


def fenced_command_problems(block: str) -> list[str]:
    out = []
    for line in block.splitlines():
        command = line.split("#")[0].strip()
        if re.match(r"^(make\s|(?:\S*/)?python3?\s+-m\s)", command):
            problem = span_problem(command)
            if problem:
                out.append(problem)
    return out


def name_problems(text: str) -> list[str]:
    prose, blocks = split_fences(text)
    problems = [p for span in code_spans(prose) if (p := span_problem(span))]
    for block in blocks:
        problems += fenced_command_problems(block)
    return problems


# ---------------------------------------------------------------------------- (b) statements

DENIES_LIVE = [
    r"\bneeds? a (running|live) (python|kernel|jupyter)",
    r"\b(cannot|can't|does not|doesn't) run (code|python)",
    r"\b(here|this page|the (book|web) ?page|the site|the website)\b[^.;]{0,60}"
    r"\b(shows?|has|keeps?) (only )?(a |the )?static\b",
    r"\bstatic (figure|picture|walk|version|image)s? only\b",
    r"^(only )?in (a live notebook|jupyter or colab|jupyter|colab)\b[^.]{0,120}"
    r"\b(slider|explorer|widget)",
    r"\b(slider|explorer|widget)s?\b[^.]{0,80}\bonly (work|move|run)s? in (jupyter|colab|a live)",
]


def explorers_are_live() -> bool:
    """`make book` executes the chapters without FUNML_STATIC, so explorers keep live sliders."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    env = re.search(r"^BOOK_ENV\s*:?=(.*)$", text, flags=re.M)
    book = re.search(r"^book:.*?(?=^\S)", text, flags=re.M | re.S)
    where = (env.group(1) if env else "") + (book.group(0) if book else "")
    return "-u FUNML_STATIC" in where


# Beyond the phrasings above: any sentence about explorers, sliders or widgets that calls them
# static or says they cannot move, unless it names the condition of the fallback (print, no
# JavaScript, widgets missing, ...), which is where the static figure is right.
EXPLORER_WORDS = r"\b(explorers?|sliders?|widgets?|interactive (figures?|views?|plots?))\b"
STATIC_WORDS = (r"\b(static|not (interactive|live)|(cannot|can't|do not|don't|does not|doesn't|"
                r"won't|will not) (move|work|respond|run|change))\b")
FALLBACK_CONDITION = (r"\b(where|without|when|if|unless|fallback|falls? back|print|no-?js|"
                      r"funml_static|missing|broken|too old|otherwise|instead of)\b")


def denies_live(sentence: str) -> bool:
    if any(re.search(p, sentence, flags=re.I) for p in DENIES_LIVE):
        return True
    return bool(re.search(EXPLORER_WORDS, sentence, flags=re.I)
                and re.search(STATIC_WORDS, sentence, flags=re.I)
                and not re.search(FALLBACK_CONDITION, sentence, flags=re.I))


def live_denials(text: str) -> list[str]:
    prose, _ = split_fences(text)
    return [s for s in sentences(prose) if denies_live(s)]


NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}


def exercise_count(paths) -> int:
    return sum(_markdown_of(p).count("{exercise-start}") for p in paths)


def stated_exercise_counts(text: str) -> list[int]:
    prose, _ = split_fences(text)
    found = []
    for m in re.finditer(r"\b(\d+|[a-z]+)\s+exercises\b", prose, flags=re.I):
        word = m.group(1).lower()
        if word.isdigit():
            found.append(int(word))
        elif word in NUMBER_WORDS:
            found.append(NUMBER_WORDS[word])
    return found


def chapter_points(path: Path) -> tuple[float, float]:
    """(points graded automatically, points graded by hand) from the nbgrader metadata."""
    auto = hand = 0.0
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            if meta.get("solution"):
                hand += float(meta.get("points", 0))
            else:
                auto += float(meta.get("points", 0))
    return auto, hand


def points_table_problems(text: str) -> list[str]:
    """Rows `| `NN_chapter` | A / H | ...` or `| `NN_chapter` | A | H | P % |` must give the
    chapter's metadata points (P: the automatic share, rounded)."""
    problems = []
    stems = {p.stem: p for p in CHAPTERS}
    number = r"(\d+(?:\.\d+)?)"
    for m in re.finditer(rf"^\|\s*`?(\d\d_\w+)`?\s*\|\s*{number}\s*\|\s*{number}\s*\|\s*{number}\s*%",
                         text, flags=re.M):
        stem, auto, hand, share = m.group(1), *(float(g) for g in m.groups()[1:])
        if stem in stems:
            real = chapter_points(stems[stem])
            real_share = round(100 * real[0] / max(sum(real), 1))
            if (auto, hand, share) != (*real, real_share):
                problems.append(f"table row {stem}: {auto:g} | {hand:g} | {share:g} %, the "
                                f"metadata gives {real[0]:g} | {real[1]:g} | {real_share} %")
    for m in re.finditer(rf"^\|\s*`?(\d\d_\w+)`?\s*\|\s*{number}\s*/\s*{number}\s*\|",
                         text, flags=re.M):
        stem, auto, hand = m.group(1), float(m.group(2)), float(m.group(3))
        if stem not in stems:
            problems.append(f"table row names {stem}, which is not a chapter")
            continue
        real = chapter_points(stems[stem])
        if (auto, hand) != real:
            problems.append(f"table row {stem}: {auto:g} / {hand:g} points, the chapter's "
                            f"metadata gives {real[0]:g} / {real[1]:g}")
    return problems


def ci_problems(text: str, ci_script: str) -> list[str]:
    """A sentence that says what CI runs names only make targets that .ci/run runs."""
    problems = []
    prose, _ = split_fences(text)
    for s in sentences(prose):
        if ".ci/run" not in s and "CI runs" not in s:
            continue
        for span in code_spans(s):
            m = re.match(r"^make (\S+)$", span)
            if m and not re.search(rf"^[^#\n]*\bmake {re.escape(m.group(1))}\b", ci_script, flags=re.M):
                problems.append(f"'{s[:80]}...' names `{span}`, which .ci/run does not run")
    return problems


def reuse_problems(stem: str, text: str, code: dict[str, str]) -> list[str]:
    """"the next chapter reuses `f`", "chapter 3 reuses `f`", "reuses `f`": that chapter calls f."""
    order = [p.stem for p in CHAPTERS]
    problems = []
    prose, _ = split_fences(text)
    for s in sentences(prose):
        if not re.search(r"\breus(e|es|ed|ing)\b", s, flags=re.I):
            continue
        target = stem
        if re.search(r"\bnext chapter", s, flags=re.I) and stem in order:
            i = order.index(stem) + 1
            target = order[i] if i < len(order) else None
        elif re.search(r"\bprevious chapter", s, flags=re.I) and stem in order:
            target = order[order.index(stem) - 1]
        elif (m := re.search(r"\bchapter (\d)\b", s, flags=re.I)):
            target = next((o for o in order if o.startswith(f"0{m.group(1)}_")), None)
        if target is None or target not in code:
            continue
        for span in code_spans(s):
            name = re.match(r"^([\w.]+)", span)
            if not name:
                continue
            short = name.group(1).split(".")[-1]
            if short in library_names() and not re.search(rf"\b{re.escape(short)}\b", code[target]):
                problems.append(f"{stem}: '{s[:90]}...' but {target} never calls {short}")
    return problems


# ---------------------------------------------------------------------------- (c) citations

@lru_cache(maxsize=None)
def bib_entries() -> dict[str, tuple[str, str]]:
    """key -> (first author's last name, year)."""
    text = BIB.read_text(encoding="utf-8")
    entries = {}
    for m in re.finditer(r"@\w+\{([^,\s]+),(.*?)\n\}", text, flags=re.S):
        body = m.group(2)
        author = re.search(r"author\s*=\s*\{(.+?)\}\s*,\s*\n", body, flags=re.S)
        year = re.search(r"year\s*=\s*\{?(\d{4})", body)
        first = author.group(1).split(" and ")[0] if author else ""
        last = first.split(",")[0] if "," in first else first.split()[-1] if first else ""
        entries[m.group(1)] = (_plain(last), year.group(1) if year else "")
    return entries


def _plain(name: str) -> str:
    """Last name without BibTeX accents and braces, lower case: S{\\o}nderby -> sonderby."""
    name = re.sub(r"\{\\.\s*([A-Za-z])\}|\\.\{?([A-Za-z])\}?", lambda m: m.group(1) or m.group(2), name)
    name = name.replace("ø", "o").replace("é", "e").replace("ó", "o")
    return re.sub(r"[{}\\'\"`^~]", "", name).lower()


def cite_keys(text: str) -> list[str]:
    keys = []
    for m in re.finditer(r"\{cite(?::\w+)?\}`([^`]*)`", text):
        keys += [k.strip() for k in m.group(1).split(",") if k.strip()]
    return keys


AUTHOR_YEAR = re.compile(
    r"\b([A-Z][\w\u00C0-\u017F'-]+)(?: et al\.| (?:&|and) [A-Z][\w\u00C0-\u017F'-]+)?"
    r"(?:'s)?,?\s*\(?((?:19|20)\d\d)\b")


def citation_problems(text: str) -> list[str]:
    entries = bib_entries()
    problems = [f"{{cite}} key {k!r} is not in references.bib" for k in cite_keys(text)
                if k not in entries]
    prose, _ = split_fences(text)
    prose = re.sub(r"\{cite(?::\w+)?\}`[^`]*`", "", prose)
    known = {(last, year) for last, year in entries.values()}
    for m in AUTHOR_YEAR.finditer(prose):
        whole = m.group(0)
        if " et al." not in whole and " & " not in whole and " and " not in whole \
                and "(" not in whole:
            continue                         # "Lecture 19", "March 2014": not a citation form
        last = _plain(m.group(1))
        if (last, m.group(2)) not in known:
            problems.append(f"'{whole}' is cited in the text but has no entry in references.bib")
    return problems


# ---------------------------------------------------------------------------- the tests

SOURCES = prose_sources()


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_named_thing_exists(name):
    problems = name_problems(SOURCES[name])
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_no_page_says_the_explorers_are_static(name):
    assert explorers_are_live(), "make book builds static explorers: this test assumes live ones"
    denials = live_denials(SOURCES[name])
    assert not denials, (f"{name}: the built pages have live sliders (precomputed frames), but "
                         "the text says otherwise:\n" + "\n".join(denials))


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_citations_resolve(name):
    problems = citation_problems(SOURCES[name])
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_every_bib_entry_is_complete():
    text = BIB.read_text(encoding="utf-8")
    for key, (last, year) in bib_entries().items():
        assert last and year, f"references.bib: {key} lacks an author or a year"
        body = re.search(rf"@\w+\{{{re.escape(key)},(.*?)\n\}}", text, flags=re.S).group(1)
        assert re.search(r"\btitle\s*=", body), f"references.bib: {key} has no title"
        assert re.search(r"\b(journal|booktitle|howpublished|eprint|publisher)\s*=", body), (
            f"references.bib: {key} says nowhere where it was published")


def test_stated_points_and_counts_match_the_metadata():
    problems = points_table_problems(SOURCES["book/instructors.md"])
    for name, text in SOURCES.items():
        path = ROOT / name
        pool = [path] if path.suffix == ".ipynb" else CHAPTERS
        for stated in stated_exercise_counts(text):
            if stated != exercise_count(pool):
                problems.append(f"{name} says {stated} exercises; the markers give "
                                f"{exercise_count(pool)}")
    assert not problems, "\n".join(problems)


def test_what_ci_runs_is_what_the_script_runs():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    problems = [p for text in SOURCES.values() for p in ci_problems(text, script)]
    assert not problems, "\n".join(problems)
    assert ci_problems("`bash .ci/run` is what CI runs: `make test`, `make bench`.", script)


def test_reuse_sentences_name_functions_the_chapter_calls():
    code = code_call_names()
    problems = []
    for path in CHAPTERS:
        problems += reuse_problems(path.stem, SOURCES[str(path.relative_to(ROOT))], code)
    assert not problems, "\n".join(problems)


# ------------------------------------------------- the checks fail on the mistakes they target

@pytest.mark.parametrize("text, expected", [
    ("| `check_l1_sparsity(fn)` | the L1 penalty |", "check_l1_sparsity"),
    ("Run `make cleanall` first.", "cleanall"),
    ("The library's `funml_lib.no_such_helper` does it.", "no_such_helper"),
    ("See `funml_lib/no_such_file.py`.", "no_such_file.py"),
    ("```bash\npython -m coursekit.no_such_tool book\n```", "no_such_tool"),
    ("It calls `gaussian_kl_montecarlo` once.", "gaussian_kl_montecarlo"),
    ("written `fit(model, loss_fn, x, n_epochs=10)`", "n_epochs"),
])
def test_name_check_fails_on_a_missing_name(text, expected):
    problems = name_problems(text)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize("text", [
    "| `check_kl_sparsity(fn)` | the KL penalty |",
    "Run `make test`, or `python -m coursekit.homework book homework`.",
    "The library's `funml_lib.fit` and `torch.randperm` do it; see `funml_lib/claims.py`.",
    "Its output goes to `_build/html/` and `course/release/<chapter>/<chapter>.ipynb`.",
])
def test_name_check_accepts_names_that_exist(text):
    assert name_problems(text) == []


@pytest.mark.parametrize("text", [
    # the intro, chapters 2, 3 and 5 before the review of 2026-12-04
    "The interactive explorers (sliders that retrain or redraw) need a running Python, so here "
    "they show a static figure; open the chapter in Colab.",
    "In a live notebook the slider below redraws the curve for any target ρ; the book page shows "
    "a few values at once.",
    "In Jupyter or Colab the slider below sets σ; the book page shows one block per noise level.",
    "This page cannot run code, so it shows the static walk only.",
    # other wordings a page could use
    "On the website the explorers are static images; run the notebook to move the sliders.",
    "The sliders on this page do not move: open the chapter in Colab.",
    "Here the widgets are not interactive.",
])
def test_static_explorer_sentences_are_caught(text):
    assert live_denials(text)


@pytest.mark.parametrize("text", [
    "The static picture above the slider shows the first two rows of every model for print.",
    "Below the figure, on this page as in Jupyter or Colab, two sliders step z1 and z2.",
    "The interactive explorers work here too: each shows a figure and, below it, sliders.",
    "Where no widget can be shown, an explorer shows its static figure and one sentence why.",
])
def test_live_explorer_sentences_pass(text):
    assert live_denials(text) == []


@pytest.mark.parametrize("text, expected", [
    ("as in {cite:p}`kingma2014,nosuchkey2099`", "nosuchkey2099"),
    ("Bishop (1994) showed that training with noise", "Bishop (1994"),
    ("the Noise2Noise idea (Lehtinen et al., 2017)", "Lehtinen et al., 2017"),
    ("the continuous Bernoulli of Loaiza-Ganem & Cunningham, 2018,", "Loaiza-Ganem & Cunningham, 2018"),
])
def test_citation_check_fails_on_a_missing_entry(text, expected):
    problems = citation_problems(text)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize("text", [
    "as in {cite:p}`kingma2014,rezende2014`",
    "a KL warm-up (Bowman et al., 2016; Sønderby et al., 2016)",
    "Kingma & Welling (2014) call the encoder's parameters phi",
    "Lecture 19 of ECE 4252/8803, in 2026",
])
def test_citation_check_accepts_entries_that_exist(text):
    assert citation_problems(text) == []


def test_points_and_reuse_checks_fail_on_wrong_statements():
    stem = CHAPTERS[2].stem                                  # chapter 2: has graded cells
    auto, hand = chapter_points(CHAPTERS[2])
    row = f"| `{stem}` | {auto + 1:g} / {hand:g} | 3 | 42 s | 20 s |"
    assert points_table_problems(row) and not points_table_problems(
        f"| `{stem}` | {auto:g} / {hand:g} | 3 |")
    share = round(100 * auto / (auto + hand))
    assert points_table_problems(f"| `{stem}` | {auto:g} | {hand + 2:g} | {share} % |")
    assert not points_table_problems(f"| `{stem}` | {auto:g} | {hand:g} | {share} % |")
    code = {p.stem: "" for p in CHAPTERS}
    code[CHAPTERS[5].stem] = "nll = importance_sampled_nll(model, x)"
    wrong = "The library's `gaussian_kl_monte_carlo`, which the next chapter reuses, agrees."
    right = "The library's `importance_sampled_nll`, which the next chapter reuses, agrees."
    assert reuse_problems(CHAPTERS[4].stem, wrong, code)
    assert not reuse_problems(CHAPTERS[4].stem, right, code)
    assert stated_exercise_counts("The book has 21 exercises.") == [21]
