"""Action keys: the digest of an action's REAPI v2 `Action` message.

The same digest names the action in the local cache and on a remote cache, so both
share one identity. Knows the REAPI messages; not how files are hashed or run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping

from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi,
)

from buildpy.actions.graph import Action

Tools = tuple[tuple[str, str], ...]   # (absolute path, SHA-256) of each tool not built by bp
IN_PROCESS = "bp-in-process"          # in the salt: the digest of the payload
TOOL = "bp-tool"                      # in the salt: "PATH SHA256" of a tool


@dataclass(frozen=True)
class FileDigest:
    """The content digest of one input file (SHA-256, as REAPI wants it); for an
    unresolved symlink, that of its text, which `link` holds."""

    hash: str
    size: int
    is_executable: bool = False
    link: str | None = None


# an input root's files by path; None stands for an empty directory
InputFiles = Mapping[str, "FileDigest | None"]


def digest_of(data: bytes) -> reapi.Digest:
    return reapi.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def command(action: Action) -> reapi.Command:
    """The REAPI Command of an action, made from its one description (`Action.description`):
    argv, sorted env, output files and directories, and the execution platform's
    properties. It is exactly what a remote executor receives. An action with a declared
    symlink among its outputs names them all in `output_paths` (REAPI v2.1), of which
    the server reports whatever it finds, symbolic links as links; `output_files` asks
    for files."""
    kind, argv, outputs, directories, platform, *_ = action.description()
    message = reapi.Command(
        arguments=list(argv),
        environment_variables=[reapi.Command.EnvironmentVariable(name=k, value=v)
                               for k, v in sorted(action.env)],
        platform=_platform(platform))
    if action.output_symlinks:
        message.output_paths.extend(outputs)
    else:
        message.output_files.extend(o for o in outputs if o not in directories)
        message.output_directories.extend(directories)
    return message


def _platform(properties) -> reapi.Platform:
    return reapi.Platform(properties=[reapi.Platform.Property(name=k, value=v)
                                      for k, v in sorted(properties)])


def salt(action: Action, tools: Tools = ()) -> bytes:
    """What makes the action's result differ that no server needs to see: an in-process
    action's payload (the content it writes, its substitutions, link target and mode;
    such actions run only locally) and the identities of the tools it runs (the real
    path and digest of a compiler found on PATH). Both go into `Action.salt`, which
    servers treat as opaque, so two actions that write different bytes, or that run
    another gcc, never share a key."""
    parts = []
    if action.payload is not None:
        parts.append(f"{IN_PROCESS} {hashlib.sha256(repr(action.payload).encode()).hexdigest()}")
    parts += [f"{TOOL} {path} {digest}" for path, digest in tools]
    return "\n".join(parts).encode()


def input_root(files: InputFiles) -> tuple[reapi.Digest, dict[str, bytes]]:
    """The Merkle tree of the inputs, files by path (None for an empty directory):
    (root digest, every Directory blob by hash)."""
    tree: dict = {}
    for path, digest in files.items():
        node = tree
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if digest is None:
            node.setdefault(parts[-1], {})
        else:
            node[parts[-1]] = digest
    blobs: dict[str, bytes] = {}
    return _encoded(tree, blobs), blobs


def _encoded(node: dict, blobs: dict[str, bytes]) -> reapi.Digest:
    """The digest of directory `node` (input_root's tree), its blob and those of the
    directories below it put in `blobs`. (A function of the module's: a nested function
    that called itself would be a reference cycle, freed only by the cyclic collector,
    which bp turns off: each action's tree would stay in memory.)"""
    directory = reapi.Directory()
    for name in sorted(node):
        child = node[name]
        if isinstance(child, dict):
            directory.directories.add(name=name, digest=_encoded(child, blobs))
        elif child.link is not None:
            directory.symlinks.add(name=name, target=child.link)
        else:
            directory.files.add(name=name, digest=reapi.Digest(
                hash=child.hash, size_bytes=child.size), is_executable=child.is_executable)
    data = directory.SerializeToString(deterministic=True)
    digest = digest_of(data)
    blobs[digest.hash] = data
    return digest


def action_message(action: Action, files: InputFiles, tools: Tools = ()
                   ) -> reapi.Action:
    """The REAPI Action of `action` whose inputs have the content digests `files` and
    whose tools are `tools` ((absolute path, digest) pairs)."""
    root, _ = input_root(files)
    command_digest = digest_of(command(action).SerializeToString(deterministic=True))
    message = reapi.Action(command_digest=command_digest, input_root_digest=root,
                           do_not_cache=not action.cacheable, salt=salt(action, tools),
                           platform=_platform(action.platform))
    if action.timeout is not None:
        message.timeout.FromNanoseconds(int(action.timeout * 1e9))
    return message


def action_key(action: Action, files: InputFiles, tools: Tools = ()) -> str:
    """The action's key: the SHA-256 of its serialized REAPI Action."""
    data = action_message(action, files, tools).SerializeToString(deterministic=True)
    return hashlib.sha256(data).hexdigest()
