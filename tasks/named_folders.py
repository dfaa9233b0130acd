"""Folders saved under a name the user chooses, each with a JSON meta file, in the artifact directory.

Reference sets and trained models are both kept this way: the name is checked, a folder is written
under a temporary name and renamed into place (a half-saved one is never seen), and listing reads
the meta files, newest first.

Each owner has a namespace of their own, so two users may both have a "line-3":

    <artifact dir>/<subdir>/<name>/                         owner None: local use without accounts
    <artifact dir>/<subdir>/_users/<sha256(owner)[:16]>/<name>/   a signed-in user

A saved folder is private to its owner until they mark it shared: then every user can read it (use
it, download it) as "owner/name" (names cannot contain "/"), but only its owner can delete it or
change its sharing. Who owns a folder is where it lies, never what its meta file says.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import UserInputError
from engine.files import write_atomically
from engine.naming import brief
from tasks.config import get_settings

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}$")
USERS_DIR = "_users"  # cannot clash with a name: names start with a letter or digit


def owner_key(owner: str) -> str:
    """A user's folder name: a hash, so any user name (slashes, dots, "..") is one safe path part."""
    return hashlib.sha256(owner.encode()).hexdigest()[:16]


# Every user's listing reads every user's meta files (to find the shared ones): each is parsed again only when it
# changed (a meta file is only ever replaced whole), so one user's many or large ones cost the others a stat each.
_MOST_CACHED = 4096
_parsed: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
_parsed_lock = threading.Lock()


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        stat = path.stat()
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with _parsed_lock:
            cached = _parsed.get(str(path))
        if cached is not None and cached[0] == version:
            return dict(cached[1])
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or "name" not in meta:
        return None
    with _parsed_lock:
        if len(_parsed) >= _MOST_CACHED:
            _parsed.clear()
        _parsed[str(path)] = (version, meta)
    return dict(meta)


class NamedFolders:
    """`<artifact dir>/<subdir>/[_users/<owner key>/]<name>/<meta_file>`; `what` / `plural` name the things in
    messages."""

    def __init__(self, subdir: str, meta_file: str, what: str, plural: str) -> None:
        self.subdir, self.meta_file, self.what, self.plural = subdir, meta_file, what, plural

    @property
    def root(self) -> Path:
        return get_settings().artifact_dir / self.subdir

    def home(self, owner: str | None = None) -> Path:
        """The folder holding `owner`'s saved ones (the root itself without accounts, as before owners existed)."""
        return self.root if owner is None else self.root / USERS_DIR / owner_key(owner)

    def folder(self, name: str, owner: str | None = None) -> Path:
        """The folder of one of `owner`'s names, once the name is known to be safe."""
        name = (name or "").strip()
        if not NAME_RULE.match(name) or ".." in name:
            raise UserInputError(f"{self.what.capitalize()} name '{brief(name)}' is not accepted: use 1 to 60 letters "
                                 "without accents (A-Z, a-z), digits, spaces, '.', '-' or '_', starting with a letter "
                                 "or digit.")
        return self.home(owner) / name

    def check_free(self, name: str, owner: str | None = None) -> None:
        if self.folder(name, owner).exists():
            raise UserInputError(f"A {self.what} named '{name.strip()}' already exists: pick another name or "
                                 "delete it.")

    def publish(self, name: str, fill: Callable[[Path], dict[str, Any]], owner: str | None = None) -> dict[str, Any]:
        """Create `owner`'s `name`, private: `fill(tmp)` creates the folder `tmp` with its files and returns the
        meta (whatever it says about owner or sharing, e.g. in an uploaded file, is replaced)."""
        self.check_free(name, owner)
        home = self.home(owner)
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / f".tmp-{os.getpid()}-{time.monotonic_ns()}"
        try:
            meta = {**fill(tmp), "name": name.strip(), "owner": owner, "shared": False}
            (tmp / self.meta_file).write_text(json.dumps(meta, indent=1))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            tmp.rename(self.folder(name, owner))
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserInputError(f"A {self.what} named '{name.strip()}' was saved at the same moment; "
                                 "pick another name.") from None
        return meta

    def _view(self, meta: dict[str, Any], folder_owner: str | None, viewer: str | None) -> dict[str, Any]:
        """The meta as `viewer` sees it: `ref` (the value that names it for them) and `mine`."""
        mine = folder_owner == viewer
        return {**meta, "owner": folder_owner, "shared": bool(meta.get("shared")), "mine": mine,
                "ref": meta["name"] if mine else f"{folder_owner}/{meta['name']}"}

    def resolve(self, ref: str, owner: str | None = None) -> tuple[Path, dict[str, Any]]:
        """(folder, meta) of `ref` for `owner`: one of their own by name, or another user's shared one as
        "user/name". Anything else is "not found", worded the same whether or not someone else has that name."""
        ref = (ref or "").strip()
        holder, slash, name = ref.rpartition("/")
        folder_owner = holder if slash and holder != owner else owner
        if slash and not holder:
            raise self._not_found(ref, owner)
        folder = self.folder(name if slash else ref, folder_owner)
        meta = _read_meta(folder / self.meta_file)
        if meta is None or (folder_owner != owner and not meta.get("shared")):
            raise self._not_found(ref, owner)
        return folder, self._view(meta, folder_owner, owner)

    def _not_found(self, ref: str, owner: str | None) -> UserInputError:
        known = ", ".join(m["ref"] for m in self.list(owner)) or "none yet"
        return UserInputError(f"No {self.what} named '{brief(ref)}' ({self.plural} you can use: {known}).")

    def get(self, ref: str, owner: str | None = None) -> dict[str, Any]:
        return self.resolve(ref, owner)[1]

    def _scan(self, home: Path) -> list[dict[str, Any]]:
        """Readable metas of the folders of one namespace, newest first (temporary folders left out)."""
        metas = [_read_meta(path) for path in home.glob(f"[!.]*/{self.meta_file}")] if home.is_dir() else []
        return sorted((m for m in metas if m), key=lambda m: m.get("created_at", 0), reverse=True)

    def list(self, owner: str | None = None) -> list[dict[str, Any]]:
        """What `owner` can use: their own (newest first), then the ones others shared (newest first)."""
        own = [self._view(m, owner, owner) for m in self._scan(self.home(owner))]
        users = self.root / USERS_DIR
        others = []
        for home in sorted(users.iterdir()) if users.is_dir() else []:
            if home == self.home(owner):
                continue
            for meta in self._scan(home):
                holder = meta.get("owner")
                if meta.get("shared") and isinstance(holder, str) and owner_key(holder) == home.name:
                    others.append(self._view(meta, holder, owner))
        return own + sorted(others, key=lambda m: m.get("created_at", 0), reverse=True)

    def _own(self, ref: str, owner: str | None, action: str) -> tuple[Path, dict[str, Any]]:
        """`ref` when `owner` may change it; another user's shared one is refused with who owns it."""
        folder, meta = self.resolve(ref, owner)
        if not meta["mine"]:
            raise UserInputError(f"'{meta['name']}' is a {self.what} shared by {meta['owner']}: only they can "
                                 f"{action} it.")
        return folder, meta

    def set_shared(self, ref: str, shared: bool, owner: str | None = None) -> dict[str, Any]:
        """Share one's own with every user (read-only for them), or make it private again."""
        if owner is None:
            raise UserInputError(f"Sharing needs sign-in: without accounts there is one user, who already has "
                                 f"every saved {self.what}.")
        folder, meta = self._own(ref, owner, "change the sharing of")
        stored = _read_meta(folder / self.meta_file) or {}
        write_atomically(folder / self.meta_file, json.dumps({**stored, "shared": bool(shared)}, indent=1))
        return {**meta, "shared": bool(shared)}

    def delete(self, ref: str, owner: str | None = None) -> None:
        folder, _ = self._own(ref, owner, "delete")
        shutil.rmtree(folder)
