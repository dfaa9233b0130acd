"""Folders saved under a name the user chooses, each with a JSON meta file, in the artifact directory.

Reference sets and trained models are both kept this way: the name is checked, a folder is written
under a temporary name and renamed into place (a half-saved one is never seen), and listing reads
the meta files, newest first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import UserInputError
from tasks.config import get_settings

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}$")


class NamedFolders:
    """`<artifact dir>/<subdir>/<name>/<meta_file>`; `what` / `plural` name the things in messages."""

    def __init__(self, subdir: str, meta_file: str, what: str, plural: str) -> None:
        self.subdir, self.meta_file, self.what, self.plural = subdir, meta_file, what, plural

    @property
    def root(self) -> Path:
        return get_settings().artifact_dir / self.subdir

    def folder(self, name: str) -> Path:
        """The folder of a name, once the name is known to be safe."""
        name = (name or "").strip()
        if not NAME_RULE.match(name) or ".." in name:
            raise UserInputError(f"{self.what.capitalize()} name {name!r} is not accepted: use 1 to 60 letters, "
                                 "digits, spaces, '.', '-' or '_', starting with a letter or digit.")
        return self.root / name

    def check_free(self, name: str) -> None:
        if self.folder(name).exists():
            raise UserInputError(f"A {self.what} named '{name.strip()}' already exists: pick another name or "
                                 "delete it.")

    def publish(self, name: str, fill: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """Create `name`: `fill(tmp)` creates the folder `tmp` with its files and returns the meta."""
        self.check_free(name)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{os.getpid()}-{time.monotonic_ns()}"
        try:
            meta = {**fill(tmp), "name": name.strip()}
            (tmp / self.meta_file).write_text(json.dumps(meta, indent=1))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            tmp.rename(self.folder(name))
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserInputError(f"A {self.what} named '{name.strip()}' was saved at the same moment; "
                                 "pick another name.") from None
        return meta

    def get(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.folder(name) / self.meta_file).read_text())
        except (OSError, ValueError):
            known = ", ".join(m["name"] for m in self.list()) or "none saved yet"
            raise UserInputError(f"No {self.what} named '{name.strip()}' (saved {self.plural}: {known}).") from None

    def list(self) -> list[dict[str, Any]]:
        """Saved ones, newest first; unreadable meta files are left out."""
        found = []
        for meta_file in self.root.glob(f"*/{self.meta_file}") if self.root.is_dir() else []:
            try:
                found.append(json.loads(meta_file.read_text()))
            except (OSError, ValueError):
                continue
        return sorted(found, key=lambda m: m.get("created_at", 0), reverse=True)

    def delete(self, name: str) -> None:
        self.get(name)
        shutil.rmtree(self.folder(name))
