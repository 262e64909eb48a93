"""ReadLog: files recorded as they were read, files found absent, and FileProof's
racy-timestamp rule."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from buildpy.core.reads import ReadLog
from buildpy.execution.digests import take_stamp


def test_a_file_is_proved_by_the_bytes_read_not_by_what_it_holds_later(tmp_path):
    stamp = take_stamp(tmp_path / "stamp")
    path = tmp_path / "BUILD"
    path.write_text("one")
    reads = ReadLog()
    assert reads.read_text(path) == "one"
    proof = reads.files[str(path)]
    assert proof.sha256 == hashlib.sha256(b"one").hexdigest()
    assert proof.holds(path, stamp)
    path.write_text("two")   # same size, maybe the same clock tick: hashed again
    assert not proof.holds(path, stamp)
    path.unlink()
    assert not proof.holds(path, stamp)


def test_stat_data_is_taken_before_the_read(tmp_path, monkeypatch):
    stamp = take_stamp(tmp_path / "stamp")
    path = tmp_path / "BUILD"
    path.write_text("one")
    read_bytes = Path.read_bytes

    def read_then_edit(self):   # an edit between bp's stat and its read
        os.utime(self, ns=(1, 1))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_then_edit)
    reads = ReadLog()
    reads.read_bytes(path)
    monkeypatch.undo()
    proof = reads.files[str(path)]
    assert proof.mtime_ns != 1 and proof.holds(path, stamp)   # by content


def test_files_found_absent_and_conflicting_observations(tmp_path):
    reads = ReadLog()
    missing, present = tmp_path / "BUILD.bazel", tmp_path / "BUILD"
    present.write_text("x")
    assert not reads.is_file(missing) and reads.is_file(present)
    assert reads.files == {str(missing): None}   # only absence counts without a read
    missing.write_text("y")                      # it appeared during the command
    assert reads.is_file(missing)
    assert not reads.files[str(missing)].holds(missing, 1 << 62)
    reads.read_bytes(missing)
    assert not reads.files[str(missing)].holds(missing, 1 << 62)


def test_text_is_read_as_path_read_text_reads_it(tmp_path):
    path = tmp_path / "BUILD"
    path.write_bytes(b"a\r\nb\rc\n")
    assert ReadLog().read_text(path) == path.read_text(encoding="utf-8") == "a\nb\nc\n"
