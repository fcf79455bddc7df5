"""The first cell of every chapter: installs funml_lib when the notebook runs in Google Colab.

The cell cannot import funml_lib (in Colab it is not installed yet), so it is plain code kept here as
text; tests check that every chapter starts with exactly this cell, that the URL matches _config.yml
and that the packages it installs are pyproject.toml's dependencies except torch and torchvision.

It always installs the newest commit of `main`: `--force-reinstall --no-deps` rebuilds funml-lib from
the repository even when a runtime already has the same version number (pip would otherwise say
"Requirement already satisfied" and keep the old commit), and touches no other package. The library's
other dependencies are installed only when missing (no `--upgrade`), and torch/torchvision are never
named, so Colab's own CUDA build of torch stays. Modules of an older funml_lib already imported in the
runtime are dropped from `sys.modules`, so the next import reads the new version.
"""
REPO_URL = "https://github.com/funml-course/autoencoder-extensions"
BRANCH = "main"
# pyproject.toml's dependencies without torch and torchvision (tests/test_colab.py keeps them in step)
DEPENDENCIES = ("numpy", "matplotlib", "tqdm", "ipywidgets", "mlxtend")
INSTALL_SPEC = f"funml-lib @ git+{REPO_URL}@{BRANCH}"

SETUP_CELL = f'''\
# Set-up. In Google Colab this installs the course library (funml_lib) from
# the newest version of the book's repository; on your own machine (after
# `make book` or `pip install -e .`) it does nothing.
import subprocess
import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    _pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    # what funml_lib needs besides torch; Colab's torch is left as it is
    _needs = [{", ".join(f'"{d}"' for d in DEPENDENCIES)}]
    subprocess.run(_pip + _needs, check=True)
    # --force-reinstall: fetch main again even if this version is installed
    _url = "git+{REPO_URL}@{BRANCH}"
    subprocess.run(_pip + ["--force-reinstall", "--no-deps",
                           "funml-lib @ " + _url], check=True)
    for _name in [m for m in sys.modules if m.split(".")[0] == "funml_lib"]:
        del sys.modules[_name]  # an import after this reads the new version'''
