"""The execution root: where actions run, with every input at its exec path.

A symlink forest: the workspace's top-level entries, `external/<repo>` for the other
repositories, and `bp-out` for the outputs. Also builds runfiles trees. Knows paths only.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
from pathlib import Path
from typing import Iterable, Mapping

_SKIPPED = {"bp-out", "bp-bin", ".git"}


def exec_root_for(cache_dir: Path, workspace: Path) -> Path:
    name = hashlib.sha256(str(workspace).encode()).hexdigest()[:16]
    return cache_dir / "execroot" / name


def prepare_exec_root(root: Path, workspace: Path, repos: Mapping[str, Path],
                      output_base: Path) -> None:
    """(Re)link the forest; cheap enough to do at the start of every build."""
    root.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, str] = {}
    for entry in os.scandir(workspace):
        if entry.name not in _SKIPPED and not entry.name.startswith("bazel-"):
            wanted[entry.name] = entry.path
    wanted["bp-out"] = str(output_base)
    linked = set()
    for name in os.listdir(root):
        if name == "external":
            continue
        path = os.path.join(root, name)
        try:
            target = os.readlink(path)
        except OSError:   # not a symlink
            target = None
        if target is not None and target == wanted.get(name):
            linked.add(name)
        else:
            _remove(Path(path))
    for name, target in wanted.items():
        if name not in linked:
            os.symlink(target, os.path.join(root, name))
    external = root / "external"
    external.mkdir(exist_ok=True)
    for repo, target in repos.items():
        link = external / repo
        if not link.is_symlink() or Path(os.readlink(link)) != target:
            _remove(link)
            os.symlink(target, link)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def runfiles_path(exec_path: str, workspace_name: str) -> str:
    """Where an exec path lands in a runfiles tree (`<ws>/pkg/f`, `<repo>/pkg/f`)."""
    parts = exec_path.split("/")
    if parts[0] == "bp-out" and len(parts) > 3 and parts[2] == "bin":
        parts = parts[3:]
    if parts[0] == "external" and len(parts) > 1:
        return "/".join(parts[1:])
    return f"{workspace_name}/" + "/".join(parts)


def build_runfiles(tree: Path, exec_root: Path, files: Iterable[str],
                   workspace_name: str, resolved: dict[str, str] | None = None,
                   named: Iterable[tuple[str, str]] = (),
                   unresolved: Mapping[str, str] | None = None) -> None:
    """A runfiles tree of symlinks to the (absolute, resolved) files in the exec root:
    `files` at their runfiles paths, then `named` (name in the tree, exec path), which
    win over them. The `unresolved` symlinks among them (exec path -> text) are links
    with the same text, as Bazel keeps them.

    The tree's MANIFEST lists its links; an unchanged tree is left as it is. `resolved`
    caches the real paths of directories across the trees of one build.
    """
    resolved = {} if resolved is None else resolved
    unresolved = unresolved or {}

    def target(path: str) -> str:
        text = unresolved.get(path)
        return text if text is not None else real_path(exec_root, path, resolved)

    links = {runfiles_path(p, workspace_name): target(p) for p in files}
    for name, path in named:
        links[posixpath.normpath(name)] = target(path)
    manifest = "".join(f"{name} {target}\n" for name, target in sorted(links.items()))
    try:
        if (tree / "MANIFEST").read_text() == manifest:
            return
    except OSError:
        pass
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    made = {str(tree)}
    for name, target in links.items():
        link = os.path.join(tree, name)
        parent = os.path.dirname(link)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        try:
            os.symlink(target, link)
        except FileExistsError:
            pass
    (tree / "MANIFEST").write_text(manifest)


def kept_link(link: str) -> bool:
    """Whether a link of a runfiles tree is a declared symlink, which the tree holds as it
    is: bp's own links are absolute and name files that exist."""
    text = os.readlink(link)
    return not os.path.isabs(text) or not os.path.exists(link)


def real_path(exec_root: Path, path: str, resolved: dict[str, str]) -> str:
    """os.path.realpath(exec_root / path), resolving each directory once."""
    full = os.path.join(exec_root, path)
    if os.path.islink(full):
        return os.path.realpath(full)
    directory, name = os.path.split(full)
    return os.path.join(_real_directory(directory, resolved), name)


def _real_directory(directory: str, resolved: dict[str, str]) -> str:
    """A directory's real path: its parent's, resolved (and remembered) first, so each
    directory costs one lstat rather than one per component."""
    real = resolved.get(directory)
    if real is None:
        parent, name = os.path.split(directory)
        if parent == directory or os.path.islink(directory):
            real = os.path.realpath(directory)
        else:
            real = os.path.join(_real_directory(parent, resolved), name)
        resolved[directory] = real
    return real
