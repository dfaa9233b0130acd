"""Named sets of good-part images, saved once and reused by later anomaly jobs (WinCLIP+ references).

    <artifact dir>/reference_sets/<name>/set.json   name, object name, files, created
    <artifact dir>/reference_sets/<name>/<NNN_file>  the images, checked when saved

A set is written to a temporary folder and renamed into place, so a half-saved set is never seen.
Workers read it by name from the shared artifact directory; nothing travels through the broker.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import UserInputError
from engine.media import load_image
from tasks.named_folders import NamedFolders
from tasks.store import safe_filename

SETS = NamedFolders("reference_sets", "set.json", "reference set", "sets")


def save(name: str, files: Sequence[tuple[str, Path]], object_name: str = "") -> dict[str, Any]:
    """Check and store the images under `name`; unreadable files are refused with the reason."""
    SETS.check_free(name)
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

    def copy_images(folder: Path) -> dict[str, Any]:
        folder.mkdir()
        stored = []
        for index, (file_name, path) in enumerate(files):
            target = f"{index:03d}_{safe_filename(file_name)}"
            shutil.copyfile(path, folder / target)
            stored.append(target)
        return {"object_name": object_name.strip(), "files": stored, "created_at": time.time()}

    return SETS.publish(name, copy_images)


def get(name: str) -> dict[str, Any]:
    return SETS.get(name)


def files(name: str) -> list[tuple[str, Path]]:
    """(file name, path) of each image of a saved set, for a job's references."""
    meta = get(name)
    return [(stored.split("_", 1)[1], SETS.folder(name) / stored) for stored in meta["files"]]


def list_sets() -> list[dict[str, Any]]:
    """Saved sets, newest first."""
    return SETS.list()


def delete(name: str) -> None:
    SETS.delete(name)
