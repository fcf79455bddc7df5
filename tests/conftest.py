"""Shared test set-up: headless plotting, offline data loading, a private cache per test session."""
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

# Tests never touch the network; the data module honours this.
os.environ.setdefault("FUNML_OFFLINE", "1")

# Course tooling (coursekit/) is not installed: it runs from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
