"""ash_neuro/atomic.py: a file is replaced whole or not at all, and gets a normal file's mode."""

from __future__ import annotations

import os
import stat

import pytest

from ash_neuro.atomic import replace_atomically


def test_the_block_writes_a_temporary_that_replaces_the_target(tmp_path):
    target = tmp_path / "data.bin"
    target.write_text("old")
    with replace_atomically(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".data.bin.")
        assert temporary.is_file() and target.read_text() == "old"
        temporary.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path, failure):
    target = tmp_path / "data.bin"
    target.write_text("old")
    with pytest.raises(type(failure)), replace_atomically(target) as temporary:
        temporary.write_text("half of the new")
        raise failure
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_a_failing_rename_leaves_no_temporary(tmp_path):
    target = tmp_path / "folder"
    target.mkdir()  # a file cannot replace a folder
    with pytest.raises(OSError), replace_atomically(target) as temporary:
        temporary.write_text("data")
    assert [p.name for p in tmp_path.iterdir()] == ["folder"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_permissions_follow_the_umask(tmp_path, umask):
    target = tmp_path / "data.bin"
    previous = os.umask(umask)
    try:
        with replace_atomically(target) as temporary:
            temporary.write_text("data")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
