"""atomic_write: all or nothing, never through a link, no temporary files left behind."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from funml_lib.atomic import atomic_write, atomic_write_text


def test_writes_the_content_and_keeps_the_mode(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "hello")
    assert target.read_text() == "hello"
    target.chmod(0o600)
    atomic_write_text(target, "again")
    assert target.read_text() == "again" and target.stat().st_mode & 0o777 == 0o600


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"good")

    def broken(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_refusing_check_leaves_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"good")

    def refuse(tmp):
        assert open(tmp, "rb").read() == b"new"  # the check sees the synced temporary file
        raise ValueError("not loadable")

    with pytest.raises(ValueError, match="not loadable"):
        atomic_write(target, lambda f: f.write(b"new"), check=refuse)
    assert target.read_bytes() == b"good" and len(list(tmp_path.iterdir())) == 1


def test_a_symlink_is_replaced_never_written_through(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    link = tmp_path / "link.txt"
    link.symlink_to(precious)
    atomic_write_text(link, "new")
    assert precious.read_text() == "keep me"
    assert not link.is_symlink() and link.read_text() == "new"


def test_a_killed_writer_s_temporary_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.txt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".out.txt.{dead.stdout.strip()}.abc123.tmp"
    stale.write_text("half")
    mine = tmp_path / f".out.txt.{os.getpid()}.live.tmp"  # this process is alive: not stale
    mine.write_text("in progress")
    atomic_write_text(target, "whole")
    assert not stale.exists() and mine.exists() and target.read_text() == "whole"
