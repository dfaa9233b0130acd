"""A Hugging Face hub cache built in a temporary folder, laid out as huggingface_hub writes it, and a guard that
makes a folder read-only even for root (tests run as root in containers, where chmod does not stop writes)."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REVISION = "0123456789abcdef0123456789abcdef01234567"


def put_in_hub_cache(cache: Path, repo: str, files: dict[str, Path | bytes]) -> Path:
    """Store files of `repo` as a download does: content in blobs/<sha256>, snapshots/<revision>/<name> a relative
    link to the blob, refs/main naming the revision. Returns the snapshot folder."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(REVISION)
    snapshot = root / "snapshots" / REVISION
    for name, content in files.items():
        data = content if isinstance(content, bytes) else Path(content).read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


_READ_ONLY: set[Path] = set()
_WRITE_EVENTS = {"os.mkdir", "os.symlink", "os.rename", "os.remove", "os.rmdir", "os.link", "os.truncate",
                 "shutil.rmtree", "shutil.move", "shutil.copyfile"}


def _refuse_writes(event: str, args: tuple) -> None:
    if not _READ_ONLY or not (event in _WRITE_EVENTS or event == "open"):
        return
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        paths = [path] if writing else []
    else:
        paths = [a for a in args if isinstance(a, str | bytes | os.PathLike)]
    for path in paths:
        if isinstance(path, int):
            continue
        resolved = Path(os.fsdecode(path)).absolute()
        if any(resolved == root or root in resolved.parents for root in _READ_ONLY):
            raise PermissionError(f"read-only (test): {resolved}")


sys.addaudithook(_refuse_writes)


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """Within the block, creating, writing, renaming or deleting anything under `folder` raises PermissionError."""
    folder = folder.absolute()
    _READ_ONLY.add(folder)
    try:
        yield folder
    finally:
        _READ_ONLY.discard(folder)
