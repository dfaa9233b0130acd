"""What every tool's command line shares: file arguments and progress on stderr."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from engine.errors import UserInputError, reason
from engine.filetypes import IMAGE_SUFFIXES
from engine.media import list_images


def image_files(paths: list[str]) -> list[tuple[str, Path]]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += list_images(path, recursive=True)
        elif path.is_file():
            files.append(path)
        else:
            raise UserInputError(f"{raw}: no such file or directory.")
    if not files:
        raise UserInputError(f"No images found in {', '.join(paths)} ({', '.join(IMAGE_SUFFIXES)}).")
    return [(str(p), p) for p in files]


def print_progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr)


def print_notes(skipped: Sequence[dict[str, str]] = (), notes: Sequence[str] = ()) -> None:
    """A run's skipped inputs and notes, on stderr, one a line."""
    for item in skipped:
        print(f"skipped  {item['error']}", file=sys.stderr)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def data_files(paths: list[str]) -> list[tuple[str, Path]]:
    """Files named on the command line; a folder contributes every file below it, named relative to it."""
    files: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += [(str(p.relative_to(path)), p) for p in sorted(path.rglob("*")) if p.is_file()]
        elif path.is_file():
            files.append((path.name, path))
        else:
            raise UserInputError(f"{raw}: no such file or directory.")
    return files


def named(paths: list[str] | None) -> list[tuple[str, Path]]:
    """(name, path) pairs, as jobs pass their inputs."""
    return [(Path(p).name, Path(p)) for p in paths or []]


def check_out(raw: str) -> Path:
    """The --out folder, created, once it is known that files can be written in it and beside it (the runs keep
    a scratch folder there): checked before any model loads, so an unusable --out is a one-line error rather than
    a traceback at the end of a run."""
    path = Path(raw)
    if path.exists() and not path.is_dir():
        raise UserInputError(f"--out {raw}: a file, not a folder; give a folder (created if missing) that can be "
                             "written to.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        for folder in (path, path.parent):
            with tempfile.TemporaryDirectory(prefix=".check-", dir=folder):
                pass
    except OSError as exc:
        raise UserInputError(f"--out {raw}: cannot be written to ({reason(exc)}); give a folder (created if missing) "
                             "that can be written to.") from None
    return path
