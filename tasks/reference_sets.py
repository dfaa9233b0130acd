"""Named sets of good-part images, saved once and reused by later anomaly jobs (WinCLIP+ references).

    <artifact dir>/reference_sets/<name>/set.json   name, object name, files, created
    <artifact dir>/reference_sets/<name>/<NNN_file>  the images, checked when saved

A set is written to a temporary folder and renamed into place, so a half-saved set is never seen.
Workers read it by name from the shared artifact directory; nothing travels through the broker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import UserInputError
from engine.media import load_image
from tasks.config import get_settings
from tasks.store import safe_filename

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}$")
META_FILE = "set.json"


def root() -> Path:
    return get_settings().artifact_dir / "reference_sets"


def _folder(name: str) -> Path:
    name = (name or "").strip()
    if not _NAME.match(name) or ".." in name:
        raise UserInputError(f"Reference set name {name!r} is not accepted: use 1 to 60 letters, digits, spaces, "
                             "'.', '-' or '_', starting with a letter or digit.")
    return root() / name


def save(name: str, files: Sequence[tuple[str, Path]], object_name: str = "") -> dict[str, Any]:
    """Check and store the images under `name`; unreadable files are refused with the reason."""
    folder = _folder(name)
    if folder.exists():
        raise UserInputError(f"A reference set named '{name.strip()}' already exists: pick another name or delete it.")
    if not files:
        raise UserInputError("A reference set needs at least one image of a good part.")
    problems = []
    for file_name, path in files:
        try:
            load_image(path, display_name=file_name)
        except UserInputError as exc:
            problems.append(str(exc))
    if problems:
        raise UserInputError("The reference set was not saved: " + " ".join(problems))
    root().mkdir(parents=True, exist_ok=True)
    tmp = root() / f".tmp-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    stored = []
    for index, (file_name, path) in enumerate(files):
        target = f"{index:03d}_{safe_filename(file_name)}"
        shutil.copyfile(path, tmp / target)
        stored.append(target)
    meta = {"name": name.strip(), "object_name": object_name.strip(), "files": stored, "created_at": time.time()}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    try:
        tmp.rename(folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserInputError(f"A reference set named '{name.strip()}' was saved at the same moment; "
                             "pick another name.") from None
    return meta


def get(name: str) -> dict[str, Any]:
    folder = _folder(name)
    try:
        return json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError):
        known = ", ".join(s["name"] for s in list_sets()) or "none saved yet"
        raise UserInputError(f"No reference set named '{name.strip()}' (saved sets: {known}).") from None


def files(name: str) -> list[tuple[str, Path]]:
    """(file name, path) of each image of a saved set, for a job's references."""
    meta = get(name)
    return [(stored.split("_", 1)[1], _folder(name) / stored) for stored in meta["files"]]


def list_sets() -> list[dict[str, Any]]:
    """Saved sets, newest first."""
    sets = []
    for meta_file in root().glob(f"*/{META_FILE}") if root().is_dir() else []:
        try:
            sets.append(json.loads(meta_file.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(sets, key=lambda s: s.get("created_at", 0), reverse=True)


def delete(name: str) -> None:
    get(name)
    shutil.rmtree(_folder(name))
