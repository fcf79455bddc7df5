"""Training throughput of the FC-VAE (784-400-20, batch 128, Adam lr 1e-3): funml_lib.fit vs the
pytorch/examples vae/main.py way, measured interleaved in one run so both see the same machine load.

(a) baseline, as in pytorch/examples vae/main.py: an MNIST Dataset that keeps uint8 images and turns
    each one into a PIL image and then a tensor (transforms.ToTensor) per sample, a DataLoader
    (batch_size=128, shuffle=True), sigmoid outputs + F.binary_cross_entropy(reduction="sum") + the
    KL term, plain torch.optim.Adam, loss.item() every batch.
(b) funml_lib.fit on the digits already on the device as one float tensor: VAE + losses.vae_loss
    (fused BCE-with-logits), fused Adam, no per-batch host sync.
Also measures the torch.mm peak (1024x1024 float32, best of several) and reports (b)'s training FLOP/s
as a percentage of it. Prints results and exits 0.

Rounds alternate (a) and (b) on the same 5,000 digits; the speed-up is the headline number because both
ways share whatever else the machine is doing. On a busy machine (load average above the CPU count)
both run on one torch thread, and a CPU-time line is added that other jobs barely disturb.

    python benchmarks/train_throughput.py [--samples 60000] [--device cpu|cuda|mps] [--threads auto|N]
                                          [--json results.json]

--json also writes the numbers for a script (coursekit/gpu_check.py reads them): device, torch version,
samples/s of both ways, their ratio and the time of one 60,000-digit epoch at (b)'s rate.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from torchvision.datasets.mnist import read_image_file, read_label_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout without `pip install -e .`
from funml_lib import VAE, PyTorchExamplesVAE, fit, load_mnist, pick_device, vae_loss  # noqa: E402
from funml_lib.atomic import atomic_write_text  # noqa: E402

BATCH, LR = 128, 1e-3
# FLOPs per sample. Forward matmuls of 784-400-(20 mu + 20 logvar)-400-784, 2 FLOPs per multiply-add:
#   2 * (784*400 + 400*40 + 20*400 + 400*784) = 2 * (313,600 + 16,000 + 8,000 + 313,600)
#   = 2 * 651,200 = 1,302,400 FLOPs forward;
# backward is about twice the forward (gradients w.r.t. inputs and weights), so fwd + bwd = 3x:
FLOPS_PER_SAMPLE = 3 * 2 * (784 * 400 + 400 * 40 + 20 * 400 + 400 * 784)  # = 3,907,200
assert FLOPS_PER_SAMPLE == 3_907_200


class IdxMNIST(Dataset):
    """torchvision.datasets.MNIST's per-sample path: uint8 (N, 28, 28) -> PIL image -> transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.data, self.targets, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = self.data[index], int(self.targets[index])
        img = Image.fromarray(img.numpy(), mode="L")  # exactly what torchvision's MNIST does
        return self.transform(img), target


def read_test_split() -> tuple[torch.Tensor, torch.Tensor, str]:
    """uint8 images (N, 28, 28) and labels from the IDX files ($FUNML_DATA or ../shared/data/mnist)."""
    root = Path(os.environ.get("FUNML_DATA") or ROOT.parent / "shared" / "data" / "mnist")
    names = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    for folder in (root, root / "MNIST" / "raw"):  # flat folder or torchvision's layout
        found = [next((folder / (n + s) for s in ("", ".gz") if (folder / (n + s)).is_file()), None)
                 for n in names]
        if all(found):
            break
    if all(found):
        with tempfile.TemporaryDirectory() as tmp:  # torchvision's readers take uncompressed files only
            plain = []
            for p in found:
                out = Path(tmp) / p.name.removesuffix(".gz")
                with (gzip.open(p) if p.suffix == ".gz" else open(p, "rb")) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                plain.append(out)
            return read_image_file(str(plain[0])), read_label_file(str(plain[1])), f"IDX files in {folder}"
    x, y = load_mnist("test", device="cpu")  # no IDX folder: whatever funml_lib serves offline
    return (x * 255).round().to(torch.uint8).reshape(-1, 28, 28), y, "funml_lib.load_mnist('test')"


def example_loss(recon_x, x, mu, logvar):
    """pytorch/examples vae/main.py loss_function: BCE on sigmoid outputs + KL, summed over the batch."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def example_epoch(model, optimizer, loader, device, max_batches=None) -> tuple[int, float]:
    """One pass of vae/main.py's train(): returns (samples seen, mean loss per sample)."""
    model.train()
    seen, train_loss = 0, 0.0
    for batch_idx, (data, _) in enumerate(loader):
        if max_batches is not None and batch_idx >= max_batches:
            break
        data = data.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data.view(-1, 784))
        loss = example_loss(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        seen += len(data)
    return seen, train_loss / max(seen, 1)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def matmul_peak(device: torch.device, repeats: int = 5) -> tuple[float, float]:
    """Best FLOP/s of a 1024x1024 float32 torch.mm (2 * 1024^3 FLOPs) over `repeats` runs: (wall, CPU time)."""
    a, b = torch.randn(1024, 1024, device=device), torch.randn(1024, 1024, device=device)
    torch.mm(a, b)
    best, best_cpu = math.inf, math.inf
    for _ in range(repeats):
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        torch.mm(a, b)
        sync(device)
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    return 2 * 1024**3 / best, 2 * 1024**3 / max(best_cpu, 1e-9)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60_000, help="training samples per way (default 60000)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: funml_lib.pick_device())")
    parser.add_argument("--threads", default="auto",
                        help="torch CPU threads for both ways; 'auto' (default): torch's default, or 1 when the "
                             "load average exceeds the CPU count (a busy shared machine)")
    parser.add_argument("--max-seconds", type=float, default=75.0,
                        help="stop starting new rounds after this many seconds (default 75; keeps a busy "
                             "machine's run under 2 minutes)")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the results to PATH as JSON (for coursekit.gpu_check)")
    args = parser.parse_args()
    if args.samples < 1:
        parser.error(f"--samples must be >= 1, got {args.samples}")
    if not (args.threads == "auto" or (args.threads.isdigit() and int(args.threads) >= 1)):
        parser.error(f"--threads must be 'auto' or an int >= 1, got {args.threads!r}")
    try:
        args.device = pick_device(args.device)
    except ValueError as e:
        parser.error(str(e))
    return args


def set_threads(threads: str) -> tuple[float, bool]:
    """Apply --threads; return (load average, whether the machine is busy)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    busy = load > (os.cpu_count() or 1)
    # on a busy machine OpenMP threads wait for each other's time slices at every op, which slows
    # the many small ops of training far more than anything else: one thread measures more fairly
    auto = 1 if busy else torch.get_num_threads()
    torch.set_num_threads(auto if threads == "auto" else int(threads))
    return load, busy


def run_rounds(args: argparse.Namespace, images: torch.Tensor, labels: torch.Tensor,
               rounds: int, start: float) -> dict:
    """Alternate the two ways, one epoch over the same digits each per round; return the timings."""
    device, per_round = args.device, len(images)
    x = images.reshape(-1, 784).to(device).float().div_(255.0)  # (b)'s data: once, on the device
    torch.manual_seed(0)
    cuda = device.type == "cuda"  # vae/main.py's DataLoader options on a GPU
    loader = DataLoader(IdxMNIST(images, labels, transforms.ToTensor()), batch_size=BATCH, shuffle=True,
                        **({"num_workers": 1, "pin_memory": True} if cuda else {}))
    base_model = PyTorchExamplesVAE().to(device)
    base_opt = torch.optim.Adam(base_model.parameters(), lr=LR)
    fast_model, loss_fn = VAE(latent_dim=20, hidden_dim=400).to(device), vae_loss()

    # warm-up (not timed): first-call costs such as allocator growth and kernel selection
    example_epoch(base_model, base_opt, loader, device, max_batches=4)
    fit(fast_model, loss_fn, x[:4 * BATCH], epochs=1, batch_size=BATCH, lr=LR, progress=False)
    sync(device)

    run = {"times": {"a": 0.0, "b": 0.0}, "cpu": {"a": 0.0, "b": 0.0}, "ratios": [], "peaks": [],
           "fast_rates": [], "last": {}, "done": 0}
    for r in range(rounds):
        if r >= 2 and time.perf_counter() - start > args.max_seconds:
            print(f"stopping after {r} of {rounds} rounds: --max-seconds {args.max_seconds:g} reached")
            break
        run["done"] += 1
        run["peaks"].append(matmul_peak(device))
        dt = {}
        for way in ("ab" if r % 2 == 0 else "ba"):  # alternate who goes first against drifting load
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            if way == "a":
                run["last"]["a"] = example_epoch(base_model, base_opt, loader, device)[1]
            else:
                history = fit(fast_model, loss_fn, x, epochs=1, batch_size=BATCH, lr=LR, seed=r, progress=False)
                run["last"]["b"] = history["loss"][-1]
            sync(device)
            dt[way] = time.perf_counter() - t0
            run["times"][way] += dt[way]
            run["cpu"][way] += time.process_time() - c0
        run["ratios"].append(dt["a"] / dt["b"])
        run["fast_rates"].append(per_round / dt["b"])
    run["peaks"].append(matmul_peak(device))
    return run


def report(args: argparse.Namespace, run: dict, per_round: int, source: str) -> None:
    """Print samples/s of both ways, their ratio and (b)'s share of the matmul peak; write --json."""
    times, last, ratios = run["times"], run["last"], run["ratios"]
    samples = run["done"] * per_round
    rate_a, rate_b = samples / times["a"], samples / times["b"]
    peak, peak_cpu = max(p[0] for p in run["peaks"]), max(p[1] for p in run["peaks"])
    print(f"(a) pytorch/examples way (DataLoader + ToTensor): {rate_a:10,.0f} samples/s "
          f"({samples:,} samples in {times['a']:.1f} s; last epoch loss {last['a']:.1f} nats/digit)")
    print(f"(b) funml_lib.fit on device tensors:              {rate_b:10,.0f} samples/s "
          f"({samples:,} samples in {times['b']:.1f} s; last epoch loss {last['b']:.1f} nats/digit)")
    print(f"speed-up (b)/(a): {rate_b / rate_a:.2f}x overall; per round median "
          f"{statistics.median(ratios):.2f}x, range {min(ratios):.2f}x .. {max(ratios):.2f}x")
    print(f"torch.mm 1024x1024 float32 peak: {peak / 1e9:.1f} GFLOP/s (best of {5 * len(run['peaks'])} runs)")
    print(f"(b) training: {FLOPS_PER_SAMPLE:,} FLOP/sample x {rate_b:,.0f} samples/s = "
          f"{FLOPS_PER_SAMPLE * rate_b / 1e9:.1f} GFLOP/s = {100 * FLOPS_PER_SAMPLE * rate_b / peak:.0f}% "
          f"of the matmul peak (best round: {100 * FLOPS_PER_SAMPLE * max(run['fast_rates']) / peak:.0f}%)")
    print(f"an epoch of the 20-d FC-VAE over 60,000 digits at (b)'s rate: {60_000 / rate_b:.2f} s")
    device = args.device
    if args.json:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        atomic_write_text(args.json, json.dumps({
            "device": str(device), "device_name": name, "torch": torch.__version__, "data": source,
            "samples": samples, "rounds": run["done"], "batch_size": BATCH, "rate_a": rate_a,
            "rate_b": rate_b, "ratio": rate_b / rate_a, "ratio_median": statistics.median(ratios),
            "epoch_60k_seconds": 60_000 / rate_b}, indent=1) + "\n")
    if device.type == "cpu" and torch.get_num_threads() == 1:  # one thread: CPU time ignores other jobs
        cpu_a, cpu_b = samples / run["cpu"]["a"], samples / run["cpu"]["b"]
        print(f"by this process's CPU time (robust to other jobs with 1 thread): (a) {cpu_a:,.0f}, (b) "
              f"{cpu_b:,.0f} samples/s, speed-up {cpu_b / cpu_a:.2f}x; (b) at "
              f"{100 * FLOPS_PER_SAMPLE * cpu_b / peak_cpu:.0f}% of the matmul peak ({peak_cpu / 1e9:.1f} GFLOP/s)")


def main() -> None:
    args = parse_args()
    load, busy = set_threads(args.threads)
    start = time.perf_counter()
    images, labels, source = read_test_split()
    per_round = min(5_000, len(images), args.samples)  # short rounds: finer interleaving, bounded runtime
    rounds = max(1, round(args.samples / per_round))
    images, labels = images[:per_round], labels[:per_round]
    print(f"torch {torch.__version__} on {args.device} ({torch.get_num_threads()} torch threads, "
          f"{os.cpu_count()} CPUs, load average {load:.1f}); data: the first {per_round:,} MNIST test digits "
          f"from {source}")
    if busy:
        print(f"note: the machine is busy (load {load:.1f} > {os.cpu_count()} CPUs), timings are noisy"
              + ("; using 1 thread (--threads auto)" if args.threads == "auto" else ""))
    print(f"{rounds} interleaved rounds x {per_round:,} samples per way, batch {BATCH}, Adam lr {LR:g}")
    run = run_rounds(args, images, labels, rounds, start)
    report(args, run, per_round, source)


if __name__ == "__main__":
    main()
