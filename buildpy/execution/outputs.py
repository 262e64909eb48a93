"""An action's outputs on disk: cleared before it runs and after it fails, stored in the
content store when it succeeds, restored from a cache entry.

A file output is one blob. A directory output (a tree artifact) is a REAPI `Tree` message,
stored as a blob, whose files are blobs too. A declared symlink is a blob of its text.
Knows paths, the content store and the Tree message; not action keys, strategies, nor the
order of actions.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Iterable

from buildpy.actions.graph import Action
from buildpy.execution.cas import ContentStore
from buildpy.execution.digests import FileDigests, FileInfo, tree_digest
from buildpy.execution.state import OutputEntry


class Outputs:
    """The outputs of actions below one exec root."""

    def __init__(self, exec_root: Path, digests: FileDigests, store: ContentStore):
        self.exec_root = exec_root
        self.digests = digests
        self.store = store
        self._directories: set[str] = set()   # parent directories known to exist

    # ---- before and after running --------------------------------------------------

    def prepare(self, action: Action) -> None:
        """Make room for the action to write: whatever stands at an output path goes
        (stale files would be added to by tools such as `ar r`; a directory or a
        read-only file would make the action fail), parents exist, and each declared
        directory exists, empty, as Bazel creates it."""
        self.clear(action.outputs)
        for output in action.outputs:
            directory = os.path.dirname(os.path.join(self.exec_root, output))
            if directory not in self._directories:
                os.makedirs(directory, exist_ok=True)
                self._directories.add(directory)
        for output in action.output_directories:
            os.mkdir(os.path.join(self.exec_root, output))

    def clear(self, paths: Iterable[str]) -> None:
        """Remove whatever stands at each path: a file, a symlink, a tree (even one the
        action made read-only). A failed or interrupted action leaves no output behind."""
        for path in paths:
            remove(os.path.join(self.exec_root, path))
            self.digests.replaced(path)

    # ---- storing -------------------------------------------------------------------

    def store_all(self, action: Action, skip: Iterable[str] = ()
                  ) -> tuple[dict[str, FileInfo], tuple[OutputEntry, ...], list[str]]:
        """Store the outputs in the CAS: their digests for later actions, the cache
        entry's outputs, and what is wrong with them (a declared output missing, a file
        where a directory was declared or the other way round)."""
        infos: dict[str, FileInfo] = {}
        entries: list[OutputEntry] = []
        problems: list[str] = []
        directories = set(action.output_directories)
        links = set(action.output_symlinks)
        for output in action.outputs:
            if output in skip:   # left on a remote server
                continue
            full = os.path.join(self.exec_root, output)
            if output in links:
                problem = self._store_link(full, output, infos, entries)
                if problem:
                    problems.append(problem)
                continue
            try:
                st = os.stat(full)
            except FileNotFoundError:   # a dangling symlink counts as missing too
                problems.append(f"did not create its declared output {output}")
                continue
            is_directory = stat.S_ISDIR(st.st_mode)
            if not is_directory and not stat.S_ISREG(st.st_mode):
                problems.append(f"created {output} as a {special_kind(st.st_mode)}, not a "
                                "regular file")
                continue
            if is_directory != (output in directories):
                problems.append(
                    f"created {output} as a {'directory' if is_directory else 'file'}, "
                    f"but declared it as a {'file' if is_directory else 'directory'}"
                    + (" (use ctx.actions.declare_directory)" if is_directory else ""))
                continue
            if is_directory:
                try:
                    blob, size, infos[output] = self._store_tree(full, output)
                except SpecialFile as error:
                    problems.append(str(error))
                    continue
                entries.append(OutputEntry(output, blob, size, False, True))
            else:
                digest, st = self.store.put_output(full)
                entries.append(OutputEntry(output, digest, st.st_size,
                                           bool(st.st_mode & 0o111)))
                infos[output] = self.digests.produced(output, digest, st.st_size, st)
        return infos, tuple(entries), problems

    def _store_link(self, full: str, output: str, infos: dict[str, FileInfo],
                    entries: list[OutputEntry]) -> str | None:
        """Store a declared symlink (its text, never what it names); what is wrong
        with it, if anything."""
        try:
            text = os.readlink(full)
        except FileNotFoundError:
            return f"did not create its declared output {output}"
        except OSError:
            kind = "directory" if os.path.isdir(full) else "file"
            return (f"created {output} as a {kind}, but declared it as a symlink "
                    "(make it with ln -s or ctx.actions.symlink(target_path = ...), or "
                    f"declare it with ctx.actions.declare_{kind})")
        info = FileInfo.of_link(text)
        self.store.put_bytes(os.fsencode(text))
        entries.append(OutputEntry(output, info.sha256, info.size, False, is_symlink=True))
        infos[output] = info
        return None

    def _store_tree(self, root: str, output: str) -> tuple[str, int, FileInfo]:
        """Store each file of the tree at `root`, then its REAPI Tree message: the
        message's digest and size, and the tree's digest (from what was stored, not
        hashed again)."""
        from buildpy.execution.trees import decode_tree, encode_tree

        def put(path: str) -> tuple[str, int, bool]:
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                raise SpecialFile(f"created {path[len(root) + 1:]} inside {output} as a "
                                  f"{special_kind(mode)}, not a regular file")
            digest, st = self.store.put_output(path)
            return digest, st.st_size, bool(st.st_mode & 0o111)

        data = encode_tree(root, put)
        return self.store.put_bytes(data), len(data), _tree_info(*decode_tree(data))

    # ---- restoring -----------------------------------------------------------------

    def restore(self, entries: Iterable[OutputEntry]) -> dict[str, FileInfo]:
        """Put the outputs of a cache entry in place (those already right stay); raises
        CorruptBlob or FileNotFoundError when a blob is damaged or gone."""
        infos = {}
        for output in entries:
            path = self.exec_root / output.path
            if output.is_directory:
                infos[output.path] = self._restore_tree(output)
                continue
            if output.is_symlink:
                infos[output.path] = self._restore_link(output, path)
                continue
            current = None
            if path.is_file() and not path.is_symlink():
                current = self.digests.digest(output.path)
            if current is None or current.sha256 != output.sha256 \
                    or current.executable != output.executable:
                remove(os.fspath(path))
                self.store.materialize(output.sha256, path, output.executable)
                current = self.digests.produced(output.path, output.sha256, output.size)
            infos[output.path] = current
        return infos

    def _restore_link(self, output: OutputEntry, path: Path) -> FileInfo:
        info = FileInfo.of_link(os.fsdecode(self.store.get_bytes(output.sha256)))
        try:
            if os.readlink(path) == info.link:
                return info
        except OSError:
            pass
        remove(os.fspath(path))
        self.digests.replaced(output.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(info.link, path)
        return info

    def _restore_tree(self, output: OutputEntry) -> FileInfo:
        from buildpy.execution.trees import decode_tree

        files, directories = decode_tree(self.store.get_bytes(output.sha256))
        root = self.exec_root / output.path
        remove(os.fspath(root))
        self.digests.replaced(output.path)
        root.mkdir(parents=True)
        for relative in directories:
            (root / relative).mkdir(parents=True, exist_ok=True)
        for relative, (digest, _size, executable) in files.items():
            self.store.materialize(digest, root / relative, executable)
        return _tree_info(files, directories)


def _tree_info(files: dict[str, tuple[str, int, bool]], directories: list[str]) -> FileInfo:
    """The digest of a tree whose files (relative path -> (sha256, size, executable))
    and directories a Tree message gave."""
    return tree_digest({f: (sha, executable) for f, (sha, _, executable) in files.items()},
                       directories)


class SpecialFile(Exception):
    """An output (or a file in an output directory) that is neither a regular file nor a
    directory: a fifo would block the read that stores it."""


def special_kind(mode: int) -> str:
    """What a file that is not regular is, in words."""
    for test, name in ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def remove(path: str) -> None:
    """Delete whatever stands at `path` (nothing there is fine)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)   # a file or a symlink; read-only files go too (the directory decides)
        return

    def retry(function, name, info):
        if isinstance(info[1], FileNotFoundError):
            return
        parent = os.path.dirname(name)
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IRWXU)
        if os.path.isdir(name) and not os.path.islink(name):
            os.chmod(name, os.stat(name).st_mode | stat.S_IRWXU)
            shutil.rmtree(name, onerror=retry)
        else:
            function(name)

    shutil.rmtree(path, onerror=retry)
