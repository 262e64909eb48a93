"""Directory outputs as REAPI `Tree` messages: a root `Directory` and its descendants,
each file named by its blob's digest.

Knows the message and the walk of a directory; not where blobs are kept (the caller's
`put` stores each file).
"""

from __future__ import annotations

import os
from typing import Callable

from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi,
)

from buildpy.actions.key import digest_of

Put = Callable[[str], tuple[str, int, bool]]   # file path -> (sha256, size, executable)


def encode_tree(root: str, put: Put) -> bytes:
    """The serialized Tree of the directory at `root`; `put` stores each file (a
    symlink counts as the file it points at) and gives its digest."""
    children: dict[str, reapi.Directory] = {}

    def directory(path: str) -> reapi.Directory:
        message = reapi.Directory()
        with os.scandir(path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_dir():
                    child = directory(entry.path)
                    data = child.SerializeToString(deterministic=True)
                    digest = digest_of(data)
                    children.setdefault(digest.hash, child)
                    message.directories.add(name=entry.name, digest=digest)
                else:
                    sha, size, executable = put(entry.path)
                    message.files.add(name=entry.name, is_executable=executable,
                                      digest=reapi.Digest(hash=sha, size_bytes=size))
        return message

    tree = reapi.Tree(root=directory(root))
    tree.children.extend(children[h] for h in sorted(children))
    return tree.SerializeToString(deterministic=True)


def decode_tree(data: bytes) -> tuple[dict[str, tuple[str, int, bool]], list[str]]:
    """The files of a serialized Tree (relative path -> (sha256, size, executable)) and
    its directories (relative paths, parents first)."""
    tree = reapi.Tree()
    tree.ParseFromString(data)
    by_digest = {digest_of(c.SerializeToString(deterministic=True)).hash: c
                 for c in tree.children}
    files: dict[str, tuple[str, int, bool]] = {}
    directories: list[str] = []

    def walk(message: reapi.Directory, prefix: str) -> None:
        for node in (*message.files, *message.directories):
            if node.name in ("", ".", "..") or "/" in node.name or "\0" in node.name:
                raise ValueError(f"a Tree names an entry {node.name!r}")
        for node in message.files:
            files[prefix + node.name] = (node.digest.hash, node.digest.size_bytes,
                                         node.is_executable)
        for node in message.directories:
            directories.append(prefix + node.name)
            walk(by_digest[node.digest.hash], prefix + node.name + "/")

    walk(tree.root, "")
    return files, directories
