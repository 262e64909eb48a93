"""What `repository_ctx` does for a repository rule, in one repository's directory:
files, templates, links, downloads and archives, processes, patches.

Paths a rule passes are relative to the repository's directory, or absolute; labels
are turned into paths by the caller. Knows one directory, the downloader and the
archive formats; not Starlark (buildpy/lang/repository.bzl builds the ctx on top).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

from buildpy.core.errors import UserError
from buildpy.external.archives import archive_type, extract
from buildpy.external.download import Downloader

EXECUTE_TIMEOUT = 600   # Bazel's default for repository_ctx.execute, in seconds


class RepoContext:
    """The operations of one fetch, rooted at `directory`."""

    def __init__(self, name: str, directory: Path, downloader: Downloader,
                 say: Callable[[str], None]):
        self.name = name
        self.directory = directory
        self.downloader = downloader
        self.say = say

    def call(self, op: str, args: dict[str, Any]) -> Any:
        method = getattr(self, "op_" + op, None)
        if method is None:
            raise UserError(f"repository_ctx has no operation '{op}'")
        return method(**args)

    def path(self, text: str) -> Path:
        """A path the rule gave: relative ones are inside the repository."""
        path = Path(text)
        return path if path.is_absolute() else self.directory / path

    # ---- files ----------------------------------------------------------------------

    def op_path(self, path: str) -> dict:
        return self.describe(self.path(path))

    @staticmethod
    def describe(path: Path) -> dict:
        """What a Starlark `path` value holds (repository.bzl's _path)."""
        return {"path": str(path), "basename": path.name, "dirname": str(path.parent),
                "exists": path.exists(), "is_dir": path.is_dir(),
                "realpath": os.path.realpath(path)}

    def op_readdir(self, path: str) -> list[dict]:
        base = self.path(path)
        return [self.describe(base / name) for name in sorted(os.listdir(base))]

    def op_read(self, path: str) -> str:
        try:
            return self.path(path).read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as error:
            raise UserError(f"repository_ctx.read(): cannot read {path}: "
                            f"{error.strerror}") from None

    def op_file(self, path: str, content: str, executable: bool) -> None:
        target = self.path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_text(content, encoding="utf-8", errors="surrogateescape")
        os.chmod(target, 0o755 if executable else 0o644)

    def op_template(self, path: str, template: str, substitutions: dict[str, str],
                    executable: bool) -> None:
        text = self.op_read(template)
        for old, new in substitutions.items():
            text = text.replace(old, new)
        self.op_file(path, text, executable)

    def op_symlink(self, target: str, link_name: str) -> None:
        link = self.path(link_name)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(self.path(target), link)

    def op_delete(self, path: str) -> bool:
        target = self.path(path)
        if target.is_symlink() or target.is_file():
            target.unlink()
            return True
        if target.is_dir():
            shutil.rmtree(target)
            return True
        return False

    # ---- downloads and archives --------------------------------------------------

    def op_download(self, url: list[str], output: str, sha256: str, executable: bool,
                    integrity: str) -> dict:
        target = self.path(output)
        if target.is_dir():
            target = target / os.path.basename(url[0].split("?", 1)[0])
        sha = self.downloader.download(url, target, sha256, integrity, executable,
                                       what=f"@{self.name}")
        return {"success": True, "sha256": sha}

    def op_download_and_extract(self, url: list[str], output: str, sha256: str, type: str,
                                strip_prefix: str, integrity: str) -> dict:
        kind = archive_type(url[0] if url else "", type)
        archive = self.directory / f".bp-download.{kind}"
        try:
            sha = self.downloader.download(url, archive, sha256, integrity,
                                           what=f"@{self.name}")
            self.say(f"Extracting @{self.name}")
            extract(archive, self.path(output), kind, strip_prefix)
        finally:
            archive.unlink(missing_ok=True)
        return {"success": True, "sha256": sha}

    def op_extract(self, archive: str, output: str, strip_prefix: str, type: str) -> None:
        source = self.path(archive)
        extract(source, self.path(output), archive_type(source.name, type), strip_prefix)

    # ---- processes ------------------------------------------------------------------

    def op_execute(self, arguments: list[str], timeout: int, environment: dict[str, str],
                   quiet: bool, working_directory: str) -> dict:
        env = dict(os.environ)
        for key, value in environment.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        where = self.path(working_directory) if working_directory else self.directory
        try:
            done = subprocess.run([str(a) for a in arguments], cwd=where, env=env,
                                  capture_output=True, timeout=timeout or EXECUTE_TIMEOUT,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            return {"return_code": 256, "stdout": _text(error.stdout),
                    "stderr": _text(error.stderr) + f"\nTimed out after {timeout} s\n"}
        except OSError as error:
            return {"return_code": 256, "stdout": "",
                    "stderr": f"cannot run {arguments[0]}: {error.strerror}\n"}
        if not quiet:
            for line in (_text(done.stdout) + _text(done.stderr)).splitlines():
                self.say(line)
        return {"return_code": done.returncode, "stdout": _text(done.stdout),
                "stderr": _text(done.stderr)}

    def op_which(self, program: str) -> dict | None:
        found = shutil.which(program)
        return self.describe(Path(found)) if found else None

    def op_patch(self, patch_file: str, strip: int) -> None:
        program = shutil.which("patch")
        if program is None:
            raise UserError(f"@{self.name}: applying patches needs the patch program",
                            hint="apt-get install patch")
        source = self.path(patch_file)
        done = subprocess.run([program, f"-p{strip}", "--batch", "--forward", "-d",
                               str(self.directory), "-i", str(source)],
                              capture_output=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise UserError(f"@{self.name}: patch {source.name} does not apply:\n"
                            + _text(done.stdout) + _text(done.stderr),
                            hint="fix the patch, or the patch_args' -p level")

    def op_report_progress(self, status: str) -> None:
        if status:
            self.say(f"Fetching @{self.name}; {status}")

    def op_environ(self) -> dict[str, str]:
        return dict(os.environ)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")
