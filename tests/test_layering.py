"""Keeps the layering honest: each layer imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "buildpy"

# layer -> the layers (besides itself) it may import
ALLOWED = {
    "core": set(),
    "lang": {"core"},
    "external": {"core"},   # repositories: definitions, fetching, downloads, archives
    "loading": {"core", "lang", "external"},
    "actions": {"core"},
    "config": {"core", "lang", "loading"},
    "analysis": {"core", "lang", "loading", "config", "actions"},
    "query": {"core", "lang", "loading", "config", "analysis", "actions"},
    "execution": {"core", "actions"},   # runs actions; knows neither loading nor analysis
    "remote": {"core", "actions", "execution"},   # REAPI client, worker, local cluster
    "session": {"core", "lang", "external", "loading", "config", "analysis", "actions",
                "query", "execution", "remote", "watch", "warm", "noop", "server"},
    "warm": {"core", "loading", "execution"},   # what a long-lived bp keeps between builds
    "watch": {"core"},   # watch mode's loop: what a build read, file events; beside session
    "noop": {"core", "analysis", "execution"},   # a no-op build told from the last one's proof
    "server": set(),   # the analysis server's socket and process; what it answers is session's
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_layers_import_only_what_is_below_them():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        layer = relative.parts[1] if len(relative.parts) > 1 else ""
        if layer not in ALLOWED:
            continue
        for module in _imports(path):
            if not module.startswith("buildpy."):
                continue
            target = _layer(module)
            if target != layer and target not in ALLOWED[layer]:
                problems.append(f"{'/'.join(relative.parts)} imports {module}")
    assert problems == []


def test_every_module_is_in_the_architecture_map():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    missing = [str(p.relative_to(PACKAGE.parent)) for p in sorted(PACKAGE.rglob("*.py"))
               if p.name != "__init__.py" and str(p.relative_to(PACKAGE.parent)) not in doc]
    assert missing == []
