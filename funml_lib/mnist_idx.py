"""MNIST's IDX file format: finding a split's two files in a folder and parsing them strictly.

Used by funml_lib.data; every error names the file and says what is wrong with it.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import torch
from torch import Tensor

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def find_idx(folder: Path, split: str) -> tuple[Path, Path] | None:
    """Return (images, labels) paths for `split` in `folder` or `folder`/MNIST/raw, else None."""
    for d in (folder, folder / "MNIST" / "raw"):
        found = []
        for name in FILES[split]:
            hits = [d / n for n in (name, name + ".gz") if (d / n).is_file()]
            found.append(hits[0] if hits else None)
        if all(found):
            return found[0], found[1]
    return None


def _plain(path: Path, data: bytes, max_length: int = 0) -> bytes:
    """The uncompressed bytes of `data` read from `path` (.gz is decompressed; max_length > 0 stops early)."""
    if path.suffix != ".gz":
        return data[:max_length] if max_length else data
    try:  # torchvision's readers take only uncompressed paths and check with bare asserts: parse here
        if max_length:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, max_length)
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path} is not a valid gzip file (truncated or corrupt?): {e}") from None


def idx_count(path: Path, data: bytes) -> int:
    """The number of items an IDX file's header announces (reads 8 bytes: cheap even for a .gz)."""
    head = _plain(path, data, 8)
    return int.from_bytes(head[4:8], "big") if len(head) == 8 else -1


def read_idx(path: Path, data: bytes, images: bool) -> Tensor:
    """Parse one MNIST IDX file's bytes into uint8 images (N, 784) or int64 labels (N,), checking all."""
    data = _plain(path, data)
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


def read_split(paths: tuple[Path, Path], raw: tuple[bytes, bytes]) -> tuple[Tensor, Tensor]:
    """Images and labels of one split from the two files' bytes; their counts must agree."""
    x, y = read_idx(paths[0], raw[0], images=True), read_idx(paths[1], raw[1], images=False)
    if len(x) != len(y):
        raise ValueError(f"{paths[0]} holds {len(x)} images but {paths[1]} holds {len(y)} labels; "
                         "they must match")
    return x, y
