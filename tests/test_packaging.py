"""The two environment descriptions (pyproject.toml for pip, environment.yml for conda) stay in step."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge/pytorch call two packages differently from PyPI.
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}


def bare_name(requirement: str) -> str:
    """'jupyter-book<2' -> 'jupyter-book'; names compared case- and separator-insensitively."""
    name = re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs.extend(extra)
    return {bare_name(r) for r in reqs}


def conda_packages() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names.update(bare_name(r) for r in dep.get("pip", []))
        else:
            name = bare_name(dep)
            names.add(CONDA_TO_PYPI.get(name, name))
    return names - NOT_PACKAGES


def test_bare_name_strips_versions_and_extras():
    assert bare_name("jupyter-book<2") == "jupyter-book"
    assert bare_name("Sphinx_Exercise>=1.0") == "sphinx-exercise"
    assert bare_name("funml-lib[book]") == "funml-lib"


def test_environment_yml_matches_pyproject():
    pip_side, conda_side = pyproject_packages(), conda_packages()
    assert pip_side - conda_side == set(), f"in pyproject.toml only: {sorted(pip_side - conda_side)}"
    assert conda_side - pip_side == set(), f"in environment.yml only: {sorted(conda_side - pip_side)}"


def test_required_packages_present_and_torch_unpinned():
    names = pyproject_packages()
    for needed in ("jupyter-book", "torch", "torchvision", "matplotlib", "ipywidgets", "tqdm",
                   "nbval", "papermill", "pytest", "mlxtend"):
        assert needed in names
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"]:
        if bare_name(req) in ("torch", "torchvision"):  # a lower bound only: pip chooses a matching pair
            assert re.fullmatch(r"torch(vision)?>=[\d.]+", req.strip()), f"{req}: let pip choose a matching pair"
    book = project["optional-dependencies"]["book"]
    assert any(bare_name(r) == "jupyter-book" and "<2" in r for r in book)


def test_every_dependency_has_the_lower_bound_make_oldest_tests():
    from coursekit import oldest
    from funml_lib import frames

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = oldest.lower_bounds()
    assert {bare_name(r) for r in project["dependencies"]} <= set(bounds)  # none without a bound
    assert bounds["ipywidgets"] == frames.MIN_IPYWIDGETS == "7.7.1"  # Colab's version for years
    assert bounds["numpy"].startswith("1.26") and bounds["ipython"] == "7.34.0"
    pins = dict(p.split("==") for p in oldest.constraints())
    assert pins["ipywidgets"] == "7.7.1" and pins["notebook"].startswith("6.")  # ipywidgets 7's front end
    for name in ("torch", "torchvision"):  # stay at the installed versions, at or above the bound
        assert oldest._release(pins[name]) >= oldest._release(bounds[name])


def test_classic_front_end_stays_below_notebook_7():
    # ipywidgets 7's front end is a classic-notebook extension, which Notebook 7 no longer loads
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.replace(" ", "").startswith("notebook>=6.5") and "<7" in r
               for r in project["optional-dependencies"]["classic"])


def test_lower_bounds_become_exact_pins(tmp_path):
    from coursekit import oldest

    py = tmp_path / "pyproject.toml"
    py.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.26.4", "tqdm", "ipywidgets>=7.7.1,<9"]\n'
                  '[project.optional-dependencies]\ntest = ["pytest"]\nsite = []\n'
                  'classic = ["Notebook>=6.5.7,<7"]\nother = ["jupyterlab>=4"]\n')
    assert oldest.lower_bounds(py) == {"numpy": "1.26.4", "ipywidgets": "7.7.1", "notebook": "6.5.7"}
    assert oldest.constraints(py) == ["ipywidgets==7.7.1", "notebook==6.5.7", "numpy==1.26.4"]


def test_linking_a_distribution_makes_hard_links_of_its_files_only(tmp_path):
    import importlib.metadata as metadata
    import os

    from coursekit import oldest

    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "a.py").write_text("A = 1\n")
    (src / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"cache")
    info = src / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n")
    (info / "RECORD").write_text("pkg/a.py,,\npkg/__pycache__/a.cpython-311.pyc,,\n../../../bin/pkg,,\n"
                                 "pkg-1.0.dist-info/METADATA,,\npkg-1.0.dist-info/RECORD,,\n")
    dist = metadata.PathDistribution(info)
    assert oldest.link_into(dst, [dist]) == 3  # a.py, METADATA, RECORD; no cache, nothing outside
    assert os.path.samefile(dst / "pkg" / "a.py", src / "pkg" / "a.py")
    assert not (dst / "pkg" / "__pycache__").exists() and not (tmp_path / "bin").exists()
    assert oldest.link_into(dst, [dist]) == 0  # already there: nothing linked twice
