"""Tests for funml_lib.checkpoints: round trips, and saves that never destroy the previous checkpoint."""
import errno
import io
import os
import signal
import tempfile
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from funml_lib.checkpoints import load_checkpoint, save_checkpoint
from funml_lib.models import VAE, SparseAutoencoder
from funml_lib.train import History, seed_everything


class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))


def model(seed: int) -> SparseAutoencoder:
    seed_everything(seed)
    return SparseAutoencoder(hidden_dim=4)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture
def good(tmp_path):
    """A folder holding one good checkpoint of model(0); yields (path, its bytes)."""
    path = save_checkpoint(model(0), tmp_path / "ckpt.pt", epochs=3)
    return path, path.read_bytes()


def assert_untouched(path: Path, content: bytes) -> None:
    """The old checkpoint is byte for byte what it was, still loads, and no temporary file is left."""
    assert path.read_bytes() == content
    assert same_weights(load_checkpoint(model(1), path), model(0))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


# ------------------------------------------------------------------------------------------ round trips
def test_checkpoint_round_trip(tmp_path):
    m = model(0)
    path = save_checkpoint(m, tmp_path / "sub" / "sparse.pt", epochs=3, history=History(loss=[1.0, 0.5]))
    other = model(1)
    assert load_checkpoint(other, path) is other and same_weights(m, other)
    extra = torch.load(path, weights_only=True)["extra"]
    assert extra == {"epochs": 3, "history": {"loss": [1.0, 0.5]}}
    assert sorted(p.name for p in path.parent.iterdir()) == ["sparse.pt"]


def test_checkpoint_keeps_every_loadable_kind_of_extra(tmp_path):
    extra = {"histories": {"kl": History(loss=[2.0]), "l1": History(loss=[1.0])}, "shape": torch.Size([2, 3]),
             "dtype": torch.float32, "pair": (1, "a"), "ids": {3, 4}, "none": None, "t": torch.arange(3),
             "nan": float("nan"), "raw": b"\x00"}
    path = save_checkpoint(Scale(), tmp_path / "s.pt", **extra)
    back = torch.load(path, weights_only=True)["extra"]
    assert back["histories"] == {"kl": {"loss": [2.0]}, "l1": {"loss": [1.0]}}
    assert type(back["histories"]["kl"]) is dict  # a History is stored as a plain dict
    assert back["pair"] == (1, "a") and back["ids"] == {3, 4} and back["shape"] == torch.Size([2, 3])
    assert torch.equal(back["t"], torch.arange(3)) and back["raw"] == b"\x00"


def test_checkpoint_refuses_other_architecture(tmp_path):
    path = save_checkpoint(SparseAutoencoder(hidden_dim=64), tmp_path / "sparse.pt")
    with pytest.raises(ValueError, match=r"^checkpoint holds a SparseAutoencoder\(hidden_dim=64\) but the model "
                                         r"is a SparseAutoencoder\(hidden_dim=128\)$"):
        load_checkpoint(SparseAutoencoder(hidden_dim=128), path)
    with pytest.raises(ValueError, match=r"^checkpoint holds a SparseAutoencoder\(hidden_dim=64\) but the model "
                                         r"is a VAE\(latent_dim=20, hidden_dim=400\)$"):
        load_checkpoint(VAE(), path)


def test_checkpoint_missing_or_corrupt_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint file '.*nothing.pt' does not exist"):
        load_checkpoint(Scale(), tmp_path / "nothing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad.pt' is not a readable checkpoint \(\w+\): the file is truncated "
                                         r"or was not written by save_checkpoint; re-create it with save_checkpoint$"):
        load_checkpoint(Scale(), bad)
    for foreign in ({"weights": 1}, {"class": "Scale", "config": {}, "state_dict": 5},
                    {"class": "Scale", "config": [], "state_dict": {}}, [1, 2]):
        torch.save(foreign, bad)
        with pytest.raises(ValueError, match=r"bad.pt' is not a funml_lib checkpoint \(expected keys 'class', "
                                             r"'config', 'state_dict'\); re-create it with save_checkpoint$"):
            load_checkpoint(Scale(), bad)
    with pytest.raises(IsADirectoryError, match=r"^checkpoint path '.*' is a folder; pass the checkpoint file in it$"):
        load_checkpoint(Scale(), tmp_path)


# ------------------------------------------------------------------- extras are checked before writing
Pair = namedtuple("Pair", "a b")
LOOPED = [1]
LOOPED.append(LOOPED)
HINT = (r", which torch.load\(weights_only=True\) cannot read back; store only tensors, numbers, strings, "
        r"bools, None and lists, tuples or dicts of them \(e.g. float\(x\), str\(path\), "
        r"torch.from_numpy\(array\)\)$")


@pytest.mark.parametrize("name, value, message", [
    ("fn", lambda: 1, r"^extra 'fn' is a function" + HINT),
    ("lr", np.float64(1e-3), r"^extra 'lr' is a numpy.float64" + HINT),
    ("where", Path("runs/a"), r"^extra 'where' is a pathlib.PosixPath" + HINT if os.name == "posix" else "where"),
    ("codes", np.zeros(3), r"^extra 'codes' is a numpy.ndarray" + HINT),
    ("history", {"loss": [1.0, np.float32(0.5)]}, r"^extra 'history'\['loss'\]\[1\] is a numpy.float32" + HINT),
    ("terms", Pair(1, 2), rf"^extra 'terms' is a {Pair.__module__}.Pair" + HINT),
    ("keys", {Path("k"): 1}, r"^extra 'keys' key PosixPath\('k'\) is a pathlib.PosixPath" + HINT
     if os.name == "posix" else "keys"),
    ("loop", LOOPED, r"^extra 'loop'\[1\] contains itself; a checkpoint must be a tree of values$"),
])
def test_unloadable_extras_are_refused_and_the_old_file_survives(good, name, value, message):
    path, content = good
    error = ValueError if "itself" in message else TypeError
    with pytest.raises(error, match=message):
        save_checkpoint(model(5), path, **{name: value})
    assert_untouched(path, content)


def test_an_open_file_is_refused_by_name(good):
    path, content = good
    with open(path, "rb") as f, pytest.raises(TypeError, match=r"^extra 'log' is a _io.BufferedReader, which "):
        save_checkpoint(model(5), path, log=f)
    with pytest.raises(TypeError, match=r"^extra 'buffer' is a _io.BytesIO, which "):
        save_checkpoint(model(5), path, buffer=io.BytesIO())
    assert_untouched(path, content)


def test_unloadable_model_config_is_refused(good):
    path, content = good
    m = model(5)
    m.config = {"hidden_dim": np.int64(4)}
    with pytest.raises(TypeError, match=r"^model.config of SparseAutoencoder\['hidden_dim'\] is a numpy.int64"):
        save_checkpoint(m, path)
    assert_untouched(path, content)


# ----------------------------------------------------------------------- failures while writing
def test_a_failure_in_the_middle_of_the_write_leaves_the_old_checkpoint(good, monkeypatch):
    path, content = good
    real_save = torch.save

    def save_half_then_fail(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[:1000])  # part of the new checkpoint reaches the disk ...
        f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")  # ... then the disk is full

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match=r"^\[Errno 28\] could not save the checkpoint '.*ckpt.pt' \(No space left "
                                      r"on device\); the previous file, if any, is unchanged$"):
        save_checkpoint(model(5), path)
    assert_untouched(path, content)
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the middle of a save
        save_checkpoint(model(5), path)
    assert_untouched(path, content)


def test_failing_fsync_or_unwritable_folder_leaves_the_old_checkpoint(good, monkeypatch):
    path, content = good

    def no_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", no_fsync)
    with pytest.raises(OSError, match=r"^\[Errno 5\] could not save the checkpoint .*\(Input/output error\); "):
        save_checkpoint(model(5), path)
    assert_untouched(path, content)
    monkeypatch.undo()

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # a read-only folder, even for root
    with pytest.raises(PermissionError, match=r"^\[Errno 13\] could not save the checkpoint .*\(Permission "
                                              r"denied\); the previous file, if any, is unchanged$"):
        save_checkpoint(model(5), path)
    assert_untouched(path, content)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_folder(good):
    path, content = good
    path.parent.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="the previous file, if any, is unchanged$"):
            save_checkpoint(model(5), path)
    finally:
        path.parent.chmod(0o700)
    assert_untouched(path, content)


def test_a_checkpoint_that_would_not_load_back_is_not_saved(good, monkeypatch):
    path, content = good
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: real_save({"x": Path("p")}, f))  # a gap in the checks
    with pytest.raises(ValueError, match=r"^the checkpoint for '.*ckpt.pt' would not load back with "
                                         r"torch.load\(weights_only=True\) \(UnpicklingError\); nothing was saved$"):
        save_checkpoint(model(5), path)
    assert_untouched(path, content)


@pytest.mark.skipif(os.name != "posix", reason="symlinks and FIFOs as on POSIX")
def test_never_writes_through_a_symlink_or_onto_a_folder(tmp_path):
    target = tmp_path / "someone_elses.txt"
    target.write_text("keep me")
    link = tmp_path / "ckpt.pt"
    link.symlink_to(target)
    with pytest.raises(ValueError, match=r"^path '.*ckpt.pt' is a symbolic link \(to '.*someone_elses.txt'\); "
                                         r"save_checkpoint never writes through a link: pass the file's real path$"):
        save_checkpoint(model(0), link)
    assert target.read_text() == "keep me" and link.is_symlink()
    dangling = tmp_path / "dangling.pt"
    dangling.symlink_to(tmp_path / "nowhere.pt")
    with pytest.raises(ValueError, match="is a symbolic link"):
        save_checkpoint(model(0), dangling)
    assert not (tmp_path / "nowhere.pt").exists()
    with pytest.raises(IsADirectoryError, match=r"^path '.*' is a folder; pass a file name such as '.*model.pt'$"):
        save_checkpoint(model(0), tmp_path)
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"^path '.*pipe.pt' exists and is not a regular file; pass a checkpoint "
                                         r"file name$"):
        save_checkpoint(model(0), fifo)
    fifo.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "dangling.pt", "someone_elses.txt"]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_an_overwrite_keeps_the_file_mode(good):
    path, _ = good
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would have made it
    path.chmod(0o640)
    save_checkpoint(model(5), path)
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and SIGKILL (POSIX)")
def test_a_save_killed_mid_write_leaves_the_old_checkpoint_loadable(good, monkeypatch):
    path, content = good
    real_save = torch.save

    def save_then_die(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[:2000])
        f.flush()
        os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of writing

    pid = os.fork()
    if pid == 0:  # the child: a save that is killed half way
        try:
            torch.save = save_then_die
            save_checkpoint(model(5), path)
        finally:
            os._exit(1)  # never reached when the kill works
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert path.read_bytes() == content
    assert same_weights(load_checkpoint(model(1), path), model(0))
    left = [p.name for p in path.parent.iterdir() if p != path]
    assert len(left) == 1 and left[0].startswith(f".ckpt.pt.{pid}.") and left[0].endswith(".tmp")
    save_checkpoint(model(2), path)  # the next save clears what the killed one left
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]
    assert same_weights(load_checkpoint(model(1), path), model(2))


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_read_only_checkpoint_is_refused_like_open_refuses_it(good, monkeypatch):
    path, content = good
    path.chmod(0o444)
    if os.geteuid() == 0:  # root may write anything, with open() too: act as the user the check protects
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: not (mode & os.W_OK and Path(p) == path))
    with pytest.raises(PermissionError) as err:
        save_checkpoint(model(5), path)
    assert str(err.value) == (f"[Errno 13] could not save the checkpoint {str(path)!r} ({path} is read-only, "
                              "so it is not replaced (as open() would refuse to write it); make it writable "
                              "or choose another file); the previous file, if any, is unchanged")
    assert path.stat().st_mode & 0o777 == 0o444
    path.chmod(0o644)
    assert_untouched(path, content)
