"""The content-addressed store: outputs hard-linked in, restored as links or copies."""

from __future__ import annotations

import hashlib
import os

import pytest

from buildpy.execution.cas import ContentStore, CorruptBlob


@pytest.fixture
def store(tmp_path):
    return ContentStore(tmp_path / "cas")


def test_an_output_is_linked_in_read_only_and_restored_as_a_link(store, tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("data\n")
    digest, st = store.put_output(out)
    assert (digest, st.st_size) == (hashlib.sha256(b"data\n").hexdigest(), 5)
    assert st.st_mode & 0o777 == 0o444 and st.st_nlink == 2
    blob = store.path(digest)
    assert os.path.samefile(out, blob) and out.stat().st_mode & 0o777 == 0o444
    restored = tmp_path / "restored" / "out.txt"
    store.materialize(digest, restored, executable=False)
    assert os.path.samefile(restored, blob)


def test_a_blob_of_another_mode_is_restored_as_a_copy(store, tmp_path):
    out = tmp_path / "data.txt"
    out.write_text("#!/bin/sh\n")
    digest, _ = store.put_output(out)
    tool = tmp_path / "tool"
    store.materialize(digest, tool, executable=True)
    assert not os.path.samefile(tool, out) and tool.stat().st_mode & 0o777 == 0o555
    assert store.path(digest).stat().st_mode & 0o777 == 0o444


def test_symlinks_and_linked_files_are_copied_and_left_alone(store, tmp_path):
    source = tmp_path / "source.txt"
    source.write_text("mine\n")
    source.chmod(0o644)
    symlink = tmp_path / "symlink.txt"
    symlink.symlink_to(source)
    hardlink = tmp_path / "hardlink.txt"
    os.link(source, hardlink)
    for output in (symlink, hardlink):
        digest, _ = store.put_output(output)
        assert not os.path.samefile(store.path(digest), source)
    assert source.stat().st_mode & 0o777 == 0o644   # the user's file stays writable


def test_a_changed_blob_is_caught_and_discarded(store, tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("good\n")
    digest, _ = store.put_output(out)
    out.chmod(0o644)
    out.write_text("edited in place\n")   # the output and the blob are one file
    with pytest.raises(CorruptBlob):
        store.materialize(digest, tmp_path / "again.txt", executable=False)
    assert not store.has(digest)


def test_a_store_removed_under_a_running_build_is_made_again(store, tmp_path):
    """A cache directory deleted mid-build: the next blobs still go in whole."""
    import shutil

    shutil.rmtree(store.root)
    digest = store.put_bytes(b"after")
    assert store.get_bytes(digest) == b"after"
    source = tmp_path / "copied"
    source.write_bytes(b"copied")
    os.link(source, tmp_path / "second-link")   # a file with other links is copied in
    shutil.rmtree(store.root)
    digest, _ = store.put_output(source)
    assert store.get_bytes(digest) == b"copied"
