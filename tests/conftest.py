"""Shared test set-up: headless plotting, offline data loading, a private cache per test session."""
import os

import matplotlib

matplotlib.use("Agg")

# Tests never touch the network; the data module honours this.
os.environ.setdefault("FUNML_OFFLINE", "1")
