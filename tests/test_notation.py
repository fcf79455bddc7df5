"""The notation appendix's "First used" column agrees with the chapters.

Each row of the tables in book/appendix_notation.md ends with the place where its term or symbol is
first used: a {ref} to a label of a chapter (or of a section inside it), or "not used in the chapters".
USES gives, for every row, a regular expression that finds the term in a chapter's Markdown cells. The
first chapter in _toc.yml order whose Markdown matches must be the chapter that holds the row's first
label; for "not used in the chapters" no chapter may match. A new row needs an entry here.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from coursekit.toc import chapter_notebooks

ROOT = Path(__file__).resolve().parents[1]
APPENDIX = ROOT / "book" / "appendix_notation.md"
NOT_USED = "not used in the chapters"
BOLD = r"\\(?:boldsymbol|mathbf)\{"

# first cell of the row, exactly as in the appendix -> how a chapter writes it
USES = {
    "distribution": r"\bdistributions?\b",
    "data set": r"\bdata ?sets?\b",
    "batch": r"\bbatch(?:es)?\b",
    "sample": r"\bsamples?\b",
    "feature": r"\bfeatures?\b",
    "nat": r"\bnats?\b",
    "logit": r"\blogits?\b",
    "importance sampling": r"\bimportance[- ]sampl",
    "proposal": r"\bproposals?\b",
    r"$x_p$ (lecture: $x_i$)": r"\bx_p\b|\bx_\{p\}",
    r"$\boldsymbol{x}_i$": BOLD + r"x\}_\{?i\b",
    r"$\boldsymbol{x}_{:,i}$": r"x\}?_\{:,\s*i\}",
    r"$\boldsymbol{X}$": BOLD + r"X\}",
    r"$N$": r"\$N\$|\$N\s*=",
    r"$P$": r"\$P\$|\$P\s*=",
    r"$P^{(k)}$": r"\bP\^\{\(\w\)\}",
    r"$\tilde{\boldsymbol{X}}$": r"\\tilde\{(?:" + BOLD + r")?[Xx]",
    r"$\boldsymbol{Z}$, $\mathbf{z}$": BOLD + r"[Zz]\}",
    r"$E_\theta$": r"\bE_\{?\\theta",
    r"$G_\phi$": r"\bG_\{?\\phi",
    r"$\hat{\boldsymbol{X}}$, $\hat{\mathbf{x}}$": r"\\hat\{(?:" + BOLD + r")?[Xx]",
    r"$\boldsymbol{W}$, $\boldsymbol{W}^{(1)}$": BOLD + r"W\}|\bW_\{|\bW\^\{\(",
    r"$\Omega(\boldsymbol{Z})$": r"\\Omega\b",
    r"$\lambda$": r"\\lambda\b",
    r"$\rho$": r"\\rho\b",
    r"$\hat{\rho}_j$": r"\\hat\{?\\rho\}?_j",
    r"$\alpha$": r"\\alpha\b",
    r"$p(\mathbf{z}) = \mathcal{N}(\mathbf{0}, \mathbf{I})$": r"\bp\(\\mathbf\{z\}\)",
    r"$\mathcal{N}(\boldsymbol{\mu}, \boldsymbol{\Sigma})$": r"\\mathcal\{N\}",
    r"$p_\phi(\mathbf{x}\mid\mathbf{z})$": r"\bp_\{?\\phi\}?\(\\mathbf\{x\}\s*\\mid",
    r"$p_\phi(\mathbf{x})$": r"\bp_\{?\\phi\}?\(\\mathbf\{x\}\)",
    r"$p_\phi(\mathbf{z}\mid\mathbf{x})$": r"\bp_\{?\\phi\}?\(\\mathbf\{z\}\s*\\mid",
    r"$q_\theta(\mathbf{z}\mid\mathbf{x})$": r"\bq_\{?\\theta",
    r"$\boldsymbol{\mu}_{z\mid x}$, $\boldsymbol{\Sigma}_{z\mid x}$": r"_\{z\s*(?:\||\\mid)\s*x\}",
    r"$\sigma_j^2$, $\log\boldsymbol{\sigma}^2$ (`logvar`)": r"\\sigma_j|`logvar`",
    r"$K$": r"\$K\$|\$K\s*=",
    r"$\mathbb{E}_q[\cdot]$": r"\\mathbb\{E\}_\{?q",
    r"$D_{KL}(q\,\Vert\,p)$": r"\bD_\{?\\?(?:KL|mathrm\{KL\})|KL divergence|Kullback",
    r"$\mathcal{L}(\mathbf{x}_i, \theta, \phi)$": r"\\mathcal\{L\}|\bELBO\b",
    r"$\boldsymbol{\varepsilon}$": r"\\varepsilon\b",
    r"$\odot$": r"\\odot\b",
    r"$f(z)$": r"\bf\((?:z|\\mathbf\{z\})\)",
    r"$\boldsymbol{W}, \mathbf{b}, s, D$": r"linear-Gaussian",
    r"$\mathbf{m}, \mathbf{S}$": r"\\mathbf\{S\}",
    r"$\boldsymbol{\Lambda}$": r"\\Lambda\b",
    r"$\beta$": r"\\beta\b",
    r"$k$": r"mean over \$k\$ codes|\$k\$ importance samples|as \$k\$ grows",
    r"$\varphi$, $\Phi$, $\Phi^{-1}$": r"\\Phi\b|\\varphi\b",
}


def appendix_rows() -> list[tuple[str, str]]:
    """(first cell, last cell) of every table row of the appendix, header rows left out."""
    rows = []
    for line in APPENDIX.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith("|---"):
            continue
        # split on " | " only: a cell such as $D_{KL}(q\,\Vert\,p)$ holds no bare pipe
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if cells[0] in ("Term", "Symbol"):
            continue
        rows.append((cells[0], cells[-1]))
    return rows


def chapter_texts() -> list[tuple[Path, str]]:
    texts = []
    for path in chapter_notebooks(ROOT):
        nb = nbformat.read(path, as_version=4)
        texts.append((path, "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")))
    return texts


def label_chapters(texts: list[tuple[Path, str]]) -> dict[str, Path]:
    """label -> the chapter whose Markdown defines it with a `(label)=` line."""
    labels = {}
    for path, text in texts:
        for label in re.findall(r"^\((\S+?)\)=\s*$", text, re.M):
            labels[label] = path
    return labels


ROWS = appendix_rows()


def test_appendix_has_rows_and_every_row_a_pattern():
    assert len(ROWS) > 30, "the appendix tables were not found"
    missing = [key for key, _ in ROWS if key not in USES]
    assert not missing, f"rows without an entry in USES (add a pattern for each): {missing}"
    stale = sorted(set(USES) - {key for key, _ in ROWS})
    assert not stale, f"USES has patterns for rows that are gone: {stale}"


@pytest.mark.parametrize("key,where", ROWS, ids=[key for key, _ in ROWS])
def test_first_used_column_names_the_first_chapter(key: str, where: str):
    texts = chapter_texts()
    pattern = re.compile(USES[key])
    first = next((path for path, text in texts if pattern.search(text)), None)
    if where == NOT_USED:
        assert first is None, f"{key!r} is marked '{NOT_USED}' but {first.name} uses it"
        return
    m = re.search(r"\{ref\}`[^`<]*<([^>]+)>`", where)
    assert m, f"{key!r}: the last column must start with a {{ref}} to a chapter label, got {where!r}"
    labels = label_chapters(texts)
    assert m.group(1) in labels, f"{key!r}: label {m.group(1)!r} is defined in no chapter"
    named = labels[m.group(1)]
    assert first is not None, f"{key!r}: no chapter uses it, yet the column names {named.name}"
    assert named == first, (f"{key!r}: the column names {named.name} ({m.group(1)}), but it is first "
                            f"used in {first.name}")
