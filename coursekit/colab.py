"""The first cell of every chapter: installs funml_lib when the notebook runs in Google Colab.

The cell cannot import funml_lib (in Colab it is not installed yet), so it is plain code kept here as
text; tests check that every chapter starts with exactly this cell and that the URL matches _config.yml.
"""
REPO_URL = "https://github.com/funml-course/autoencoder-extensions"
BRANCH = "main"

SETUP_CELL = f'''\
# Set-up. In Google Colab this installs the course library (funml_lib) from the book's repository;
# on your own machine (after `make book` or `pip install -e .`) it does nothing.
import subprocess
import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "funml-lib @ git+{REPO_URL}@{BRANCH}"], check=True)'''
