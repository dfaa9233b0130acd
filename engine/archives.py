"""Safe extraction of uploaded zip archives: no path traversal, bounded size and file count."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from engine.errors import UserInputError

DEFAULT_MAX_FILES = 20_000
DEFAULT_MAX_BYTES = 4 * 2**30


def extract_zip(archive: Path, destination: Path, display_name: str | None = None,
                max_files: int | None = None, max_bytes: int | None = None) -> Path:
    """Extract `archive` into `destination`, refusing anything that could escape it or exhaust the disk.

    Refused: absolute paths, '..' components, links, more than `max_files` entries or `max_bytes`
    uncompressed (FEWSHOT_MAX_ZIP_FILES / FEWSHOT_MAX_ZIP_BYTES), and sizes that lie about themselves.
    Nested archives are extracted as plain files, never opened.
    """
    name = display_name or archive.name
    max_files = max_files or int(os.environ.get("FEWSHOT_MAX_ZIP_FILES", DEFAULT_MAX_FILES))
    max_bytes = max_bytes or int(os.environ.get("FEWSHOT_MAX_ZIP_BYTES", DEFAULT_MAX_BYTES))
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserInputError(f"{name}: not a readable zip archive ({exc}).") from None
    with bundle:
        entries = bundle.infolist()
        if len(entries) > max_files:
            raise UserInputError(f"{name}: {len(entries)} entries; at most {max_files} are accepted.")
        declared = sum(entry.file_size for entry in entries)
        if declared > max_bytes:
            raise UserInputError(f"{name}: {declared:,} bytes uncompressed; at most {max_bytes:,} are accepted.")
        destination.mkdir(parents=True, exist_ok=True)
        root = destination.resolve()
        written = 0
        for entry in entries:
            path = PurePosixPath(entry.filename.replace("\\", "/"))
            if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
                raise UserInputError(f"{name}: entry '{entry.filename}' points outside the archive; nothing "
                                     "was extracted from it. Zip the folder itself, with relative paths.")
            if stat.S_ISLNK(entry.external_attr >> 16):
                raise UserInputError(f"{name}: entry '{entry.filename}' is a symbolic link; links are not accepted.")
            target = (root / Path(*path.parts)).resolve() if path.parts else root
            if root not in (target, *target.parents):
                raise UserInputError(f"{name}: entry '{entry.filename}' points outside the archive.")
            if entry.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(entry) as source, open(target, "wb") as sink:
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    if written > max_bytes:
                        sink.close()
                        shutil.rmtree(root, ignore_errors=True)
                        raise UserInputError(f"{name}: expands past {max_bytes:,} bytes; at most that is accepted.")
                    sink.write(chunk)
    return destination


def find_folder_with(root: Path, child: str, display_name: str = "the archive") -> Path:
    """The shallowest folder under `root` (itself included) that has a sub-folder named `child`."""
    candidates = sorted((p.parent for p in root.rglob(child) if p.is_dir()), key=lambda p: len(p.parts))
    if (root / child).is_dir():
        return root
    if not candidates:
        raise UserInputError(f"{display_name}: no '{child}/' folder found in it.")
    return candidates[0]


def expand_archives(
    files: Sequence[tuple[str, Path]], work_dir: Path, accepted_suffixes: Sequence[str],
) -> tuple[list[tuple[str, Path]], list[dict[str, str]]]:
    """Replace each uploaded .zip by the accepted files inside it, named '<zip>/<path inside>'.

    A zip that cannot be extracted safely, and entries of another type (nested archives included:
    they are never opened), are returned as skipped items with the reason; the rest goes on.
    """
    expanded: list[tuple[str, Path]] = []
    skipped: list[dict[str, str]] = []
    for index, (name, path) in enumerate(files):
        if Path(name).suffix.lower() != ".zip":
            expanded.append((name, path))
            continue
        try:
            root = extract_zip(path, work_dir / f"archive_{index:03d}", display_name=name)
        except UserInputError as exc:
            skipped.append({"file": name, "error": str(exc)})
            continue
        entries = sorted(p for p in root.rglob("*") if p.is_file())
        for entry in entries:
            inner = f"{name}/{entry.relative_to(root).as_posix()}"
            suffix = entry.suffix.lower()
            if suffix in accepted_suffixes:
                expanded.append((inner, entry))
            elif suffix in (".zip", ".tar", ".gz", ".tgz", ".7z", ".rar"):
                skipped.append({"file": inner, "error": f"{inner}: archives inside archives are not opened; "
                                                        "put the files in the top-level zip."})
            elif not entry.name.startswith(".") and "__MACOSX" not in entry.parts:
                skipped.append({"file": inner, "error": f"{inner}: not an accepted file type "
                                                        f"({', '.join(accepted_suffixes)})."})
        if not entries:
            skipped.append({"file": name, "error": f"{name}: the zip is empty."})
    return expanded, skipped
