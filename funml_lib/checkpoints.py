"""Save and load trained models: `save_checkpoint` writes atomically, `load_checkpoint` checks the fit.

A save never destroys the previous checkpoint. Everything is checked before a byte is written (the
extras must be values `torch.load(weights_only=True)` reads back), the file is written next to the
target under a temporary name, flushed to disk, read back, and only then renamed over the old file
(`os.replace`, atomic on one file system). A failure, a full disk or a kill in the middle leaves
the old file as it was.
"""
from __future__ import annotations

import collections
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from funml_lib.atomic import atomic_write

CHECKPOINT_FORMAT = 1
_SCALARS = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size)
_CONTAINERS = (list, tuple, dict, collections.OrderedDict, set)


def _check_path(path: object) -> Path:
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    return Path(path).expanduser()


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def _loadable(where: str, value: object, _seen: tuple[int, ...] = ()) -> object:
    """`value` as torch.load(weights_only=True) will read it back; raises if it cannot.

    Tensors, numbers, strings, bools, None and lists, tuples, sets and dicts of them pass; a dict
    subclass (a History) becomes a plain dict; anything else (a function, a file, a numpy value, a
    Path, a class instance) is refused with `where` in the message.
    """
    kind = type(value)
    if kind in _SCALARS or kind in (Tensor, nn.Parameter):
        return value
    if isinstance(value, dict) and kind not in _CONTAINERS:
        value, kind = dict(value), dict
    if kind not in _CONTAINERS:
        name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
        raise TypeError(f"{where} is a {name}, which torch.load(weights_only=True) cannot read back; "
                        f"store only tensors, numbers, strings, bools, None and lists, tuples or dicts "
                        f"of them (e.g. float(x), str(path), torch.from_numpy(array))")
    if id(value) in _seen:
        raise ValueError(f"{where} contains itself; a checkpoint must be a tree of values")
    _seen = (*_seen, id(value))
    if isinstance(value, dict):
        return kind((_loadable(f"{where} key {k!r}", k, _seen), _loadable(f"{where}[{k!r}]", v, _seen))
                    for k, v in value.items())
    return kind(_loadable(f"{where}[{i}]", v, _seen) for i, v in enumerate(value))


def _contents(model: nn.Module, extra: dict) -> dict:
    extra = {k: _loadable(f"extra {k!r}", v) for k, v in extra.items()}
    config = _loadable(f"model.config of {type(model).__name__}", dict(getattr(model, "config", {})))
    state = {k: v.detach().cpu() if isinstance(v, Tensor) else v for k, v in model.state_dict().items()}
    state = _loadable(f"{type(model).__name__}.state_dict()", state)
    return {"format": CHECKPOINT_FORMAT, "class": type(model).__name__, "config": config,
            "state_dict": state, "extra": extra}


def save_checkpoint(model: nn.Module, path: str | Path, **extra) -> Path:
    """Save the model's class name, `model.config` and weights (as CPU tensors) to `path`; returns the path.

    extra: values stored alongside (e.g. history=..., epochs=...): tensors, numbers, strings, bools,
    None and lists, tuples or dicts of them (a History is stored as a plain dict); read them back with
    torch.load(path, weights_only=True)["extra"]. Anything else is refused before a byte is written.
    Parent folders are created. The write is atomic: if anything fails, `path` keeps its old content.
    """
    _check_model(model)
    path = _check_path(path)
    contents = _contents(model, extra)  # every check happens before anything touches the disk
    if path.is_symlink():
        raise ValueError(f"path {str(path)!r} is a symbolic link (to {os.readlink(path)!r}); "
                         f"save_checkpoint never writes through a link: pass the file's real path")
    if path.is_dir():
        raise IsADirectoryError(f"path {str(path)!r} is a folder; pass a file name such as "
                                f"{str(path / 'model.pt')!r}")
    if path.exists() and not path.is_file():  # a device, a pipe, a socket: never replace those
        raise ValueError(f"path {str(path)!r} exists and is not a regular file; pass a checkpoint file name")
    def loads_back(tmp: str) -> None:  # read it back as load_checkpoint will
        try:
            torch.load(tmp, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"the checkpoint for {str(path)!r} would not load back with "
                             f"torch.load(weights_only=True) ({type(e).__name__}); nothing was saved") from e

    try:
        atomic_write(path, lambda f: torch.save(contents, f), check=loads_back)
    except OSError as e:
        message = (f"could not save the checkpoint {str(path)!r} ({e.strerror or e}); "
                   f"the previous file, if any, is unchanged")
        raise (OSError(e.errno, message) if e.errno else OSError(message)) from e
    return path


def _describe(name: str, config: dict) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in config.items())})"


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights saved by save_checkpoint into `model` (in place, on its device) and return it.

    Refuses (ValueError) a checkpoint of another class or config, naming both.
    """
    _check_model(model)
    path = _check_path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint path {str(path)!r} is a folder; pass the checkpoint file in it")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} does not exist; save one with save_checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types for a truncated or foreign file
        raise ValueError(f"{str(path)!r} is not a readable checkpoint ({type(e).__name__}): the file is "
                         f"truncated or was not written by save_checkpoint; re-create it with save_checkpoint"
                         ) from None
    if not (isinstance(ckpt, dict) and {"class", "config", "state_dict"} <= set(ckpt)
            and isinstance(ckpt["class"], str) and isinstance(ckpt["config"], dict)
            and isinstance(ckpt["state_dict"], dict)):
        raise ValueError(f"{str(path)!r} is not a funml_lib checkpoint (expected keys 'class', 'config', "
                         f"'state_dict'); re-create it with save_checkpoint")
    config = dict(getattr(model, "config", {}))
    if ckpt["class"] != type(model).__name__ or ckpt["config"] != config:
        raise ValueError(f"checkpoint holds a {_describe(ckpt['class'], ckpt['config'])} "
                         f"but the model is a {_describe(type(model).__name__, config)}")
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:  # same class and config but other weights, e.g. a model without config
        raise ValueError(f"the weights in {str(path)!r} do not fit {type(model).__name__}: {e}") from None
    return model
