"""Which ingredient of funml_lib.fit buys how much speed: the FC-VAE (784-400-20, batch 128, Adam lr 1e-3)
trained one step at a time from the pytorch/examples vae/main.py way to fit's way, one change per line.

    0 pytorch/examples way: DataLoader + PIL + ToTensor per sample, sigmoid + BCE, plain Adam, .item()
    1 + digits already a float tensor on the device, batches by randperm + index_select
    2 + BCE-with-logits (one fused, stable kernel) instead of sigmoid then BCE
    3 + foreach Adam (one kernel launch per op for all parameters)
    4 + fused Adam (one kernel for the whole update)
    5 + no .item() per batch (loss summed on the device, one sync per epoch): funml_lib.fit's loop
    6 funml_lib.fit itself (adds argument checks and history)
    7 (only with --compile) level 5 with forward + loss under torch.compile; its compile time is printed
All variants run interleaved, round after round, so they see the same machine load. Speeds are reported
from wall time and from this process's CPU time; with --threads 1 (the default here) the CPU time is
robust to other people's jobs on a shared machine.

    python benchmarks/fit_ablation.py [--samples 20000] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import BATCH, LR, IdxMNIST, example_loss, read_test_split  # noqa: E402

from funml_lib import VAE, PyTorchExamplesVAE, fit, vae_loss  # noqa: E402

NAMES = ["0 pytorch/examples way", "1 + device tensors", "2 + BCE-with-logits", "3 + foreach Adam",
         "4 + fused Adam", "5 + one sync per epoch", "6 funml_lib.fit", "7 + torch.compile(loss)"]


def make_variant(level: int, images: torch.Tensor, labels: torch.Tensor, x: torch.Tensor):
    """Return run() that trains one pass over the data the way of `level` (see module doc)."""
    torch.manual_seed(0)
    if level == 6:
        model, loss_fn = VAE(), vae_loss()
        return lambda: fit(model, loss_fn, x, epochs=1, batch_size=BATCH, lr=LR, progress=False)
    model = PyTorchExamplesVAE()
    adam = {3: {"foreach": True}}.get(level, {"fused": True} if level >= 4 else {"foreach": False})
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, **adam)
    loader = DataLoader(IdxMNIST(images, labels, transforms.ToTensor()), batch_size=BATCH, shuffle=True)

    def batches():
        if level == 0:
            for data, _ in loader:
                yield data.view(-1, 784)
        else:
            perm = torch.randperm(len(x))
            for s in range(0, len(x), BATCH):
                yield x.index_select(0, perm[s:s + BATCH])

    def loss_of(data):
        mu, logvar = model.encode(data)
        z = model.reparameterize(mu, logvar)
        if level >= 2:
            return (F.binary_cross_entropy_with_logits(model.decode_logits(z), data, reduction="sum")
                    - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()))
        return example_loss(model.decode(z), data, mu, logvar)

    if level == 7:
        loss_of = torch.compile(loss_of, dynamic=False)

    def run():
        total = torch.zeros(())
        for data in batches():
            optimizer.zero_grad()
            loss = loss_of(data)
            loss.backward()
            if level >= 5:
                total += loss.detach()
            else:
                loss.item()
            optimizer.step()
        total.item()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000, help="samples per variant (default 20000)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--compile", action="store_true", help="add variant 7 (torch.compile; needs a C compiler)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, labels, source = read_test_split()
    per_round = min(5_000, len(images), args.samples)
    rounds = max(1, round(args.samples / per_round))
    images, labels = images[:per_round], labels[:per_round]
    x = images.reshape(-1, 784).float().div_(255.0)
    print(f"torch {torch.__version__}, cpu, {torch.get_num_threads()} thread(s); {rounds} rounds x "
          f"{per_round:,} samples per variant from {source}")
    names = NAMES if args.compile else NAMES[:-1]
    runs = [make_variant(level, images, labels, x) for level in range(len(names))]
    for name, run in zip(names, runs):  # warm-up, not timed (includes torch.compile's compile time)
        t0 = time.perf_counter()
        run()
        if name.startswith("7"):
            print(f"torch.compile: first pass (compiling, two batch shapes) took {time.perf_counter() - t0:.1f} s")
    wall, cpu = [0.0] * len(runs), [0.0] * len(runs)
    for r in range(rounds):
        order = range(len(runs)) if r % 2 == 0 else reversed(range(len(runs)))
        for i in order:
            w0, c0 = time.perf_counter(), time.process_time()
            runs[i]()
            wall[i] += time.perf_counter() - w0
            cpu[i] += time.process_time() - c0
    n = rounds * per_round
    print(f"{'variant':28s} {'samples/s (wall)':>17s} {'samples/s (CPU)':>16s} {'x vs 0 (CPU)':>13s}")
    for name, w, c in zip(names, wall, cpu):
        print(f"{name:28s} {n / w:17,.0f} {n / c:16,.0f} {cpu[0] / c:12.2f}x")


if __name__ == "__main__":
    main()
