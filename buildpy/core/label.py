"""Labels (`//pkg:name`, `@repo//pkg:name`): parsing, validation and printing.

Knows the syntax of labels only; whether a package or target exists is loading's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from buildpy.core.errors import UserError

MAIN_REPO = ""
_main_repository_name = ""   # `@<this name>//...` is the main repository, as in Bazel
# Bzlmod: in repository R, `@name` means _repository_mapping[R][name] (a module's own
# names for its dependencies); `@@name` is never mapped
_repository_mapping: dict[str, dict[str, str]] = {}


def set_main_repository_name(name: str) -> None:
    """Name the main repository (its WORKSPACE's `workspace(name = ...)`): labels that
    name it, `@name//pkg:x`, then mean `//pkg:x`, so its files load once."""
    global _main_repository_name
    _main_repository_name = name


def set_repository_mapping(mapping: dict[str, dict[str, str]]) -> None:
    """What each repository's own names of other repositories mean (Bzlmod's repository
    mapping: `repo_name`s and use_repo() aliases), by repository."""
    global _repository_mapping
    _repository_mapping = {repo: dict(names) for repo, names in mapping.items()}

# Characters Bazel (LabelValidator) allows. Package names: printable 7-bit ASCII except
# ':' and '\\'. Target names: the same plus ':' (not first) and any non-ASCII character.
# Bazel's label docs list fewer (no space, no '`'), but Bazel accepts these.
_PACKAGE_CHARS = re.compile(r"[ -9;-\[\]-~]*")
# (targets: every character but controls and '\\', as `[ -\[\]-~\u0080-\U0010ffff]`, which
# takes 1.5 ms to compile)
_TARGET_CHARS = re.compile(r"[^\x00-\x1f\\\x7f]*")
_REPO_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
# The common case, checked first: segments of ordinary characters not starting with '.'
# (so no '.', '..' or empty segment) are valid package and target names.
_SEGMENT = r"[A-Za-z0-9_+=,@~-][A-Za-z0-9_.+=,@~-]*"
_PLAIN_PATH = re.compile(f"{_SEGMENT}(?:/{_SEGMENT})*")
# The labels BUILD files mostly write, `//pkg:name` and `name` or `:name` in the current
# package, with plain segments only: they need none of parse_label's other steps (a text
# starting with '@' names a repository and is never taken by these).
_PLAIN_ABSOLUTE = re.compile(f"//((?:{_SEGMENT}(?:/{_SEGMENT})*)?):({_SEGMENT}(?:/{_SEGMENT})*)")
_PLAIN_RELATIVE = re.compile(f":?({_SEGMENT}(?:/{_SEGMENT})*)")


_set = object.__setattr__   # (how a frozen dataclass sets its fields)


@dataclass(frozen=True, order=True, slots=True)
class PackageId:
    """A package: its repository (`""` for the main workspace) and its path."""

    repo: str
    name: str

    def __str__(self) -> str:
        prefix = f"@{self.repo}" if self.repo else ""
        return f"{prefix}//{self.name}"

    def label(self, target: str) -> "Label":
        return Label(self.repo, self.name, target)


@dataclass(frozen=True, order=True, slots=True, init=False)
class Label:
    """A target's name: repository, package path and target name, already validated."""

    repo: str
    package: str
    name: str
    _hash: int = field(init=False, repr=False, compare=False)

    def __init__(self, repo: str, package: str, name: str) -> None:
        # (written out: a cold query makes 70,000 labels, and the generated __init__ with
        # a __post_init__ took half again as long.) Labels are hashed millions of times:
        # once is enough.
        _set(self, "repo", repo)
        _set(self, "package", package)
        _set(self, "name", name)
        _set(self, "_hash", hash((repo, package, name)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self):   # string hashes differ between processes: hash again
        return Label, (self.repo, self.package, self.name)

    def __str__(self) -> str:
        prefix = f"@{self.repo}" if self.repo else ""
        return f"{prefix}//{self.package}:{self.name}"

    @property
    def package_id(self) -> PackageId:
        return PackageId(self.repo, self.package)

    def relative_to(self, package: PackageId) -> str:
        """The shortest text naming this label from inside `package` (`:name` if local)."""
        if self.repo == package.repo and self.package == package.name:
            return f":{self.name}"
        return str(self)


class LabelError(UserError):
    """A malformed label or target pattern."""


def _fail(text: str, why: str, hint: str | None = None, what: str = "label") -> LabelError:
    return LabelError(f"invalid {what} '{text}': {why}", hint=hint)


def validate_package_name(text: str, package: str, what: str = "label") -> None:
    if package == "" or _PLAIN_PATH.fullmatch(package):
        return
    if not _PACKAGE_CHARS.fullmatch(package):
        bad = next(c for c in package if not _PACKAGE_CHARS.fullmatch(c))
        raise _fail(text, f"package name '{package}' contains '{bad}', which is not allowed "
                          "in package names", what=what)
    if package.startswith("/") or package.endswith("/"):
        raise _fail(text, f"package name '{package}' may not start or end with '/'", what=what)
    for segment in package.split("/"):
        if segment == "":
            raise _fail(text, f"package name '{package}' contains an empty segment ('//')",
                        what=what)
        if not segment.strip("."):   # '.', '..', and '...' (a pattern's wildcard)
            raise _fail(text, f"package name '{package}' contains a '{segment}' segment",
                        hint="labels are always relative to the workspace root; "
                             "write the package path without '.' or '..'", what=what)


def validate_target_name(text: str, name: str, what: str = "label") -> None:
    if _PLAIN_PATH.fullmatch(name):
        return
    if name == "":
        raise _fail(text, "empty target name", what=what)
    if name.startswith(":"):   # Bazel allows ':' in a target name, but not first
        raise _fail(text, f"target name '{name}' may not start with ':'",
                    hint="a label has a single ':' between the package and the target name",
                    what=what)
    if not _TARGET_CHARS.fullmatch(name):
        bad = next(c for c in name if not _TARGET_CHARS.fullmatch(c))
        shown = bad if bad.isprintable() else repr(bad)[1:-1]
        hint = "use '/' to separate directories" if bad == "\\" else None
        raise _fail(text, f"target name '{name}' contains '{shown}', which is not allowed "
                          "in target names", hint=hint, what=what)
    if name.startswith("/") or name.endswith("/") or "//" in name:
        raise _fail(text, f"target name '{name}' may not start or end with '/' or contain '//'",
                    what=what)
    for segment in name.split("/"):
        if segment in (".", ".."):
            raise _fail(text, f"target name '{name}' contains a '{segment}' segment",
                        hint="a label may not reach outside its package's directory tree",
                        what=what)


def split_repo(text: str, what: str = "label") -> tuple[str | None, str]:
    """Split `@repo//rest` into ("repo", "//rest"); no `@` gives (None, text). A
    canonical name (`@@repo//`, Bzlmod's) names the same repository: bp keeps one
    namespace of repositories."""
    if not text.startswith("@"):
        return None, text
    if text.startswith("@@"):
        text = text[1:]
    end = text.find("//")
    repo = text[1:] if end < 0 else text[1:end]
    rest = "//" + repo if end < 0 else text[end:]
    if end < 0:  # `@repo` means `@repo//:repo`
        rest = "//:" + repo
    if repo and not _REPO_NAME.fullmatch(repo):
        raise _fail(text, f"invalid repository name '@{repo}'", what=what)
    if repo and repo == _main_repository_name:
        repo = MAIN_REPO
    return repo, rest


def parse_label(text: str, current: PackageId | None = None) -> Label:
    """Parse `text` as a label, resolving relative forms against package `current`."""
    if type(text) is str and not text.startswith("@"):   # the fast path (see _PLAIN_ABSOLUTE)
        plain = _PLAIN_ABSOLUTE.fullmatch(text)
        if plain is not None:
            return Label(current.repo if current is not None else MAIN_REPO, plain[1], plain[2])
        if current is not None:
            plain = _PLAIN_RELATIVE.fullmatch(text)
            if plain is not None:
                return Label(current.repo, current.name, plain[1])
    return _parse_label(text, current)


def _parse_label(text: str, current: PackageId | None) -> Label:
    """parse_label, every form and every error (test_label.py checks that the fast path
    gives what this gives)."""
    if not isinstance(text, str):
        raise LabelError(f"expected a label string, got {type(text).__name__} {text!r}")
    if text == "":
        raise _fail(text, "empty label")
    repo, rest = split_repo(text)
    if repo and _repository_mapping and not text.startswith("@@"):
        repo = _repository_mapping.get(current.repo if current is not None else MAIN_REPO,
                                       {}).get(repo, repo)
    if rest.startswith("//"):
        body = rest[2:]
        package, colon, name = body.partition(":")
        if not colon:
            name = package.rsplit("/", 1)[-1]
            if name == "":
                raise _fail(text, "empty target name",
                            hint="name the target: '//:name' in the root package")
        validate_package_name(text, package)
        validate_target_name(text, name)
        if repo is None:
            repo = current.repo if current is not None else MAIN_REPO
        return Label(repo, package, name)
    if repo is not None:
        raise _fail(text, "a repository name must be followed by '//'")
    if current is None:
        raise _fail(text, "relative label outside a package",
                    hint="write an absolute label such as '//pkg:name'")
    if not rest.startswith(":") and ":" in rest:
        raise _fail(text, "a label naming a package must start with '//'",
                    hint=f"write '//{rest}'")
    name = rest[1:] if rest.startswith(":") else rest
    validate_target_name(text, name)
    return Label(current.repo, current.name, name)


def label_sort_key(label: Label) -> tuple:
    """Bazel's order of labels: repository, then package path segment by segment, name."""
    return (label.repo, label.package.split("/") if label.package else [], label.name)
