"""The .pt cache of converted MNIST tensors: atomic writes, reads validated as strictly as a fresh parse.

An entry is {"format", "source": sha256 of the bytes it was made from, "x": uint8 (N, 784),
"y": int64 (N,), "checksum": sha256 of x's and y's bytes}. `load` returns None, so the caller rebuilds
from the source, unless every field checks out: same format, same source hash (a changed IDX file is
never served stale), the count the source announces, uint8 pixels (so x / 255 lies in [0, 1]), labels
0..9 and an intact checksum (flipped bytes, a truncated file or a foreign tensor are all rebuilt).
`save` writes a temporary file in the cache folder, flushes and fsyncs it and renames it over the
entry (os.replace: a symlink there is replaced, never written through). Any failure to write (read-only
folder, full disk, a cache path that is a file) only costs speed: no exception, no temporary file left
(one left by a process killed mid-write is deleted by the next save of that entry).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import Tensor

from funml_lib.atomic import atomic_write

FORMAT = 2  # bump when the entry layout changes: older entries are then rebuilt


def cache_dir() -> Path:
    """Folder for downloads and converted .pt tensors: $FUNML_CACHE, else ~/.cache/funml."""
    return Path(os.environ.get("FUNML_CACHE") or Path.home() / ".cache" / "funml").expanduser()


def cache_label() -> str:
    """How to name the cache folder in printed text without an absolute path of this machine."""
    return "$FUNML_CACHE" if os.environ.get("FUNML_CACHE") else "~/.cache/funml"


def sha256(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(len(c).to_bytes(8, "big"))  # length-prefixed: (ab, c) and (a, bc) differ
        h.update(c)
    return h.hexdigest()


def _checksum(x: Tensor, y: Tensor) -> str:
    return sha256(x.contiguous().numpy().tobytes(), y.contiguous().numpy().tobytes())


def load(name: str, source: str, count: int) -> tuple[Tensor, Tensor] | None:
    """The cached (x, y) for `name` if it was made from `source` and holds `count` valid digits, else None."""
    path = cache_dir() / name
    try:
        if path.is_symlink() or not path.is_file():
            return None
        entry = torch.load(path, weights_only=True, map_location="cpu")
    except Exception:  # unreadable, truncated or not a torch file: rebuilt rather than reported
        return None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("source") != source:
        return None
    x, y = entry.get("x"), entry.get("y")
    if not (isinstance(x, Tensor) and isinstance(y, Tensor) and x.dtype == torch.uint8
            and y.dtype == torch.int64 and x.dim() == 2 and y.dim() == 1 and x.shape[1] == 784
            and len(x) == len(y) == count):
        return None
    if count and not 0 <= int(y.min()) <= int(y.max()) <= 9:
        return None
    return (x, y) if entry.get("checksum") == _checksum(x, y) else None


def save(name: str, source: str, x: Tensor, y: Tensor) -> None:
    """Store (x, y) made from `source` under `name`, atomically; never raises, never leaves a temp file."""
    entry = {"format": FORMAT, "source": source, "x": x, "y": y, "checksum": _checksum(x, y)}
    try:
        atomic_write(cache_dir() / name, lambda f: torch.save(entry, f))
    except Exception:  # read-only folder (torch raises RuntimeError), full disk, path is a file: speed only
        pass