"""Named sets of good-part images, saved once and reused by later anomaly jobs (WinCLIP+ references).

    <artifact dir>/reference_sets/<name>/set.json   name, object name, files, names, created, owner, shared
    <artifact dir>/reference_sets/<name>/<key>       the images, checked when saved

Each image is stored under an `engine.naming.file_key` key ("files") and its name as given is kept in "names",
so a job using the set shows `部品 1.png` or a 255-byte name as it was, never as re-derived from the key.

(a signed-in user's sets lie in `reference_sets/_users/<owner key>/<name>/`: see `tasks.named_folders`).
A set is written to a temporary folder and renamed into place, so a half-saved set is never seen.
Jobs read a set by reference in the web process, as the submitting user, and copy its images into the job;
nothing travels through the broker. A set is its owner's until they share it (read-only for others).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import UserInputError
from engine.limits import max_reference_images, too_many
from engine.media import load_image
from engine.naming import file_key
from tasks.named_folders import NamedFolders
from tasks.quota import check_room

SETS = NamedFolders("reference_sets", "set.json", "reference set", "sets")


def save(name: str, files: Sequence[tuple[str, Path]], object_name: str = "", *,
         owner: str | None = None) -> dict[str, Any]:
    """Check and store the images as `owner`'s set `name` (private); unreadable files are refused with the reason."""
    SETS.check_free(name, owner)
    if not files:
        raise UserInputError("A reference set needs at least one image of a good part.")
    if len(files) > max_reference_images():
        raise too_many("This reference set", "images", max_reference_images(), "FEWSHOT_MAX_REFERENCE_IMAGES")
    check_room(owner, sum(path.stat().st_size for _, path in files), "this reference set")
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
            stored.append(file_key(file_name, index))
            shutil.copyfile(path, folder / stored[-1])
        return {"object_name": object_name.strip(), "files": stored, "names": [str(n) for n, _ in files],
                "created_at": time.time()}

    return SETS.publish(name, copy_images, owner)


def get(ref: str, *, owner: str | None = None) -> dict[str, Any]:
    """A set `owner` may use: their own by name, or another user's shared one as "user/name"."""
    return SETS.get(ref, owner)


def files(ref: str, *, owner: str | None = None) -> list[tuple[str, Path]]:
    """(file name, path) of each image of a set `owner` may use, for a job's references."""
    folder, meta = SETS.resolve(ref, owner)
    stored = meta["files"]
    names = meta.get("names") or [key.split("_", 1)[-1] for key in stored]  # sets saved before "names"
    return [(name, folder / key) for name, key in zip(names, stored, strict=True)]


def list_sets(*, owner: str | None = None) -> list[dict[str, Any]]:
    """The sets `owner` may use: their own, then the ones others shared; each with its `ref` and `mine`."""
    return SETS.list(owner)


def set_shared(ref: str, shared: bool, *, owner: str | None = None) -> dict[str, Any]:
    """Share one's own set with every user (they can use it, not delete it), or make it private again."""
    return SETS.set_shared(ref, shared, owner)


def delete(ref: str, *, owner: str | None = None) -> None:
    """Delete one's own set (jobs that used it keep their copies)."""
    SETS.delete(ref, owner)
