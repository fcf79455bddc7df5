"""Property tests for the atomic writers: an existing file is treated as open() treats it.

For generated permission modes (hypothesis, 64 cases, derandomized) funml_lib.atomic.atomic_write_text,
coursekit.safe_io.atomic_write_text and save_checkpoint refuse exactly the files that open(path, "r+b")
refuses (on this machine, for this user: root may write anything), keep the old content when they
refuse, and keep the file's mode when they replace it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import coursekit.safe_io as safe_io
from funml_lib import atomic
from funml_lib.checkpoints import save_checkpoint

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def writers(path: Path):
    yield "funml_lib.atomic", lambda: atomic.atomic_write_text(path, "new")
    yield "coursekit.safe_io", lambda: safe_io.atomic_write_text(path, "new")
    yield "save_checkpoint", lambda: save_checkpoint(torch.nn.Linear(1, 1), path)


def open_allows(path: Path) -> bool:
    try:
        with open(path, "r+b"):  # opens for writing without truncating: nothing changes
            return True
    except PermissionError:
        return False


@settings(max_examples=64, **SETTINGS)
@given(mode=st.integers(0, 0o777))
def test_existing_files_are_refused_exactly_when_open_refuses_them(tmp_path, mode):
    for name, write in writers(tmp_path / "target"):
        path = tmp_path / "target"
        if path.exists():
            path.chmod(0o600)
            path.unlink()
        path.write_text("old")
        path.chmod(mode)
        allowed = open_allows(path)
        if allowed:
            write()
            assert path.stat().st_mode & 0o777 == mode, name  # the replacement keeps the mode
            path.chmod(0o600)
            assert path.read_bytes() != b"old", name
        else:
            with pytest.raises(PermissionError, match="is read-only, so it is not replaced"):
                write()
            path.chmod(0o600)
            assert path.read_text() == "old", name
        assert sorted(p.name for p in tmp_path.iterdir()) == ["target"], name  # no temporary left


@settings(max_examples=32, **SETTINGS)
@given(mode=st.sampled_from([0o444, 0o400, 0o440, 0o555, 0o000]))
def test_read_only_files_are_refused_for_an_ordinary_user(tmp_path, monkeypatch, mode):
    # root bypasses permissions (open() too), so the ordinary user's view is simulated with os.access
    path = tmp_path / "target"
    path.write_text("old")
    path.chmod(mode)
    monkeypatch.setattr(os, "access", lambda p, m, **kw: not (m & os.W_OK) or bool(os.stat(p).st_mode & 0o200))
    for name, write in writers(path):
        with pytest.raises(PermissionError, match=f"{path} is read-only"):
            write()
        path.chmod(0o600)
        assert path.read_text() == "old", name
        path.chmod(mode)
    path.chmod(0o600)
