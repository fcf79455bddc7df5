"""Every parameter combination check_parameters accepts runs to the end of its chapter; others are refused.

A seeded sample of combinations per chapter: a few parameters of the chapter's parameters cell are
drawn from small values inside their allowed ranges (edges included: the smallest n_train, sizes of
1, lr = 1, noise 10, ...), the rest keep the chapter's tiny test parameters. Each combination that
check_parameters(chapter=N, ...) accepts is executed with papermill (claims skipped, as in the notebook
tests) and must finish. FUNML_PARAM_COMBOS=N runs N accepted combinations per chapter (default 1: a
chapter at tiny sizes takes 30-100 s on a 2-core machine); FUNML_PARAM_SEED picks another sample.
The refusals are checked without running anything: check_parameters must refuse them by name.
"""
from __future__ import annotations

import ast
import os
import random
import re
from pathlib import Path

import nbformat
import pytest

from funml_lib.parameters import RANGES, check_parameters

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("0[0-5]_*.ipynb"))
COMBOS = int(os.environ.get("FUNML_PARAM_COMBOS", "1"))
SEED = int(os.environ.get("FUNML_PARAM_SEED", "0"))
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"

# Small values inside each allowed range, edges included; sizes stay tiny so a run costs seconds.
SPACE: dict[str, list] = {
    "n_train": [10, 64, 100, 256, 300], "n_test": [1, 10, 64, 256], "n_show": [1, 7, 100],
    "n_labels": [10, 100, 256], "n_parts": [1, 4, 8], "seed": [0, 1, 2**32 - 1],
    "epochs": [1], "conv_epochs": [1], "overcomplete_epochs": [1], "epochs_2d": [1], "sweep_epochs": [1],
    "batch_size": [1, 16, 64, 256], "lr": [1e-4, 3e-3, 0.1, 1.0], "overcomplete_lr": [1e-4, 1e-3, 1.0],
    "warmup": [0.0, 0.1, 1.0], "latent_dim": [1, 2, 3, 20], "conv_latent_dim": [1, 16],
    "latent_dims": [[10, 2], [2, 10], [1, 2, 10], [5, 2], [3, 1]],
    "hidden_dim": [8, 32, 128], "overcomplete_dim": [785, 1000], "code_dim": [8, 128],
    "rho": [0.01, 0.05, 0.5, 0.99], "threshold": [0.01, 0.05, 0.5],
    "kl_lams": [[0.0], [0.001, 0.003], [10.0]], "l1_lams": [[0.0], [0.001, 0.005], [10.0]],
    "sweep_lams": [[0.001], [0.001, 0.03], [0.0, 10.0]], "kl_lam": [0.0, 0.003, 10.0],
    "l1_lam": [0.0, 0.001, 10.0], "sigma": [0.05, 0.5, 1.0, 10.0],
    "sigmas": [[0.0], [0.0, 0.5], [0.1, 10.0]], "mask_fractions": [[0.0], [0.0, 0.5], [0.25, 1.0]],
    "n_mc": [2, 200], "grad_samples": [2, 4096], "q_mu": [-100.0, 0.0, 1.0, 100.0],
    "q_sigma": [0.01, 1.0, 100.0], "beta": [0.0, 1.0, 100.0], "n_is": [1, 64], "k": [1, 5],
}


def parameters_cell(path: Path) -> dict:
    """The chapter's parameters cell as {name: default value} (literal assignments only)."""
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    values = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            # literals and arithmetic of literals (2**17): evaluated without names or builtins
            code = compile(ast.Expression(node.value), str(path), "eval")
            values[node.targets[0].id] = eval(code, {"__builtins__": {}})
    return values


def number(path: Path) -> int:
    return int(path.name[:2])


def accepted(chapter: int, params: dict) -> bool:
    try:
        check_parameters(chapter=chapter, **params)
    except ValueError:
        return False
    return True


def sample(path: Path, count: int, seed: int) -> list[dict]:
    """`count` accepted combinations (changes against the test parameters) for one chapter, seeded."""
    defaults = parameters_cell(path)
    tiny = nbformat.read(path, as_version=4).metadata.get("funml", {}).get("test_parameters", {})
    names = sorted(n for n in defaults if n in SPACE)
    rng = random.Random(f"{path.stem}-{seed}")
    combos: list[dict] = []
    for _ in range(200 * count):
        if len(combos) == count:
            break
        change = {n: rng.choice(SPACE[n]) for n in rng.sample(names, min(3, len(names)))}
        params = {**defaults, **tiny, **change}
        params.pop("device", None)
        if accepted(number(path), params) and {**tiny, **change} not in combos:
            combos.append({**tiny, **change})
    return combos


CASES = [(p, c) for p in CHAPTERS for c in sample(p, COMBOS, SEED)]


def test_every_chapter_has_sampled_combinations():
    assert len(CASES) == COMBOS * len(CHAPTERS)  # FUNML_PARAM_COMBOS=0 turns the runs off
    assert not COMBOS or {p for p, _ in CASES} == set(CHAPTERS)
    assert all(name in RANGES for name in SPACE)  # the space only names parameters that have a range


@pytest.mark.parametrize("path, params", CASES, ids=[f"{p.stem[:2]}-{i}" for i, (p, _) in enumerate(CASES)])
def test_an_accepted_combination_runs_to_the_end(path, params, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("FUNML_CLAIMS", "skip")  # the tiny sizes are not the claims' settings
    monkeypatch.setenv("FUNML_STATIC", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    if SHARED_MNIST.is_dir():
        monkeypatch.setenv("FUNML_DATA", str(SHARED_MNIST))
    out = tmp_path / path.name
    try:
        papermill.execute_notebook(str(path), str(out), parameters=params, cwd=str(BOOK), kernel_name="python3",
                                   progress_bar=False, log_output=False)
    except papermill.PapermillExecutionError as err:
        pytest.fail(f"{path.name} with {params} (accepted by check_parameters) failed in cell "
                    f"{err.cell_index}: {err.ename}: {err.evalue}")


# The refusals: combinations that cannot work, each refused by check_parameters before any training.
REFUSED = [
    (1, {"latent_dims": [10]}, "parameter latent_dims must hold at least two different code sizes"),
    (1, {"latent_dims": [2, 2]}, "parameter latent_dims must hold at least two different code sizes"),
    (3, {"sigma": 0.0}, "parameter sigma must be above 0 in chapter 3"),
    (3, {"n_train": 1}, "parameter n_train must be at least 100 in chapter 3"),
    (3, {"n_train": 100, "n_labels": 1000}, "parameter n_labels must be at most n_train (100)"),
    (3, {"n_test": 5}, "parameter n_test must be at least 10 in chapter 3"),
    (2, {"n_parts": 9, "hidden_dim": 8}, "parameter n_parts must be at most hidden_dim (8)"),
    (5, {"n_train": 32, "batch_size": 64}, "parameter n_train must be at least batch_size (64)"),
    (4, {"n_train": 1}, "parameter n_train must be at least 10"),
    (3, {"sigma": 10.5}, "parameter sigma must be a number in [0, 10]"),
    (1, {"lr": 0.0}, "parameter lr must be a number in (0, 1]"),
]


@pytest.mark.parametrize("chapter, change, message", REFUSED)
def test_combinations_that_cannot_work_are_refused_by_name(chapter, change, message):
    path = next(p for p in CHAPTERS if number(p) == chapter)
    params = {**parameters_cell(path), **change}
    params.pop("device", None)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        check_parameters(chapter=chapter, **params)
    check_parameters(**{k: v for k, v in parameters_cell(path).items() if k != "device"}, chapter=chapter)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem[:2])
def test_defaults_and_test_parameters_are_accepted(path):
    tiny = nbformat.read(path, as_version=4).metadata.get("funml", {}).get("test_parameters", {})
    defaults = {k: v for k, v in parameters_cell(path).items() if k != "device"}
    check_parameters(chapter=number(path), **defaults)
    check_parameters(chapter=number(path), **{**defaults, **tiny})


def test_chapter_argument_is_checked():
    with pytest.raises(ValueError, match=r"^chapter must be a chapter number 0..5 .* got 7$"):
        check_parameters(chapter=7)
    check_parameters(chapter="03_denoising_autoencoders", sigma=0.5)
