"""Safe extraction of uploaded zip archives: no path traversal, bounded size and file count."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from engine.errors import UserInputError, reason
from engine.naming import MAX_NAME_BYTES, distinct_names, numbered

DEFAULT_MAX_FILES = 20_000
DEFAULT_MAX_BYTES = 4 * 2**30


def extract_zip(archive: Path, destination: Path, display_name: str | None = None,
                max_files: int | None = None, max_bytes: int | None = None,
                skipped: list[dict[str, str]] | None = None) -> Path:
    """Extract `archive` into `destination`, refusing anything that could escape it or exhaust the disk.

    Refused, with nothing extracted: absolute paths, '..' components, links, more than `max_files`
    entries or `max_bytes` uncompressed (FEWSHOT_MAX_ZIP_FILES / FEWSHOT_MAX_ZIP_BYTES), and sizes
    that lie about themselves. Nested archives are extracted as plain files, never opened.
    An entry that this file system cannot hold (a name over 255 bytes, a file where its folder should
    be) is added to `skipped` as {file, error} and the rest goes on (without `skipped`, it is refused
    by name); an entry whose name is taken already (a duplicate, or a folder of that name) is kept as
    'name (2).ext', so no image is silently lost.
    """
    name = display_name or archive.name
    max_files = max_files or int(os.environ.get("FEWSHOT_MAX_ZIP_FILES", DEFAULT_MAX_FILES))
    max_bytes = max_bytes or int(os.environ.get("FEWSHOT_MAX_ZIP_BYTES", DEFAULT_MAX_BYTES))
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserInputError(f"{name}: not a readable zip archive ({reason(exc)}).") from None
    with bundle:
        entries = bundle.infolist()
        if len(entries) > max_files:
            raise UserInputError(f"{name}: {len(entries)} entries; at most {max_files} are accepted.")
        declared = sum(entry.file_size for entry in entries)
        if declared > max_bytes:
            raise UserInputError(f"{name}: {declared:,} bytes uncompressed; at most {max_bytes:,} are accepted.")
        for entry in entries:
            entry.filename = _utf8_name(entry)
        parts = [_checked_parts(name, entry) for entry in entries]  # every entry, before anything is written
        destination.mkdir(parents=True, exist_ok=True)
        root = destination.resolve()
        written = 0
        for entry, path in zip(entries, parts, strict=True):
            if entry.is_dir() or not path:
                with contextlib.suppress(OSError):  # a file of that name: the entries inside say so
                    root.joinpath(*path).mkdir(parents=True, exist_ok=True)
                continue
            try:
                sink = _create(root, path)
            except OSError as exc:
                problem = f"{name}/{entry.filename}: {_unwritable(exc)}; the rest of the zip was used."
                if skipped is None:
                    raise UserInputError(problem) from None
                skipped.append({"file": f"{name}/{entry.filename}", "error": problem})
                continue
            with bundle.open(entry) as source, sink:
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    if written > max_bytes:
                        sink.close()
                        shutil.rmtree(root, ignore_errors=True)
                        raise UserInputError(f"{name}: expands past {max_bytes:,} bytes; at most that is accepted.")
                    sink.write(chunk)
    return destination


def _utf8_name(entry: zipfile.ZipInfo) -> str:
    """The entry's name as its maker wrote it: zip tools that store UTF-8 names without the zip's UTF-8 flag
    (Info-ZIP's `zip`, older Windows and Java tools) would otherwise give 'carte ╬⌐.PNG' for 'carte Ω.PNG', a name
    no annotation file matches. Names that are not UTF-8 keep the zip's own code page (cp437)."""
    if entry.flag_bits & 0x800:
        return entry.filename
    try:
        return entry.filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return entry.filename


def _checked_parts(name: str, entry: zipfile.ZipInfo) -> tuple[str, ...]:
    """The entry's path components, or a refusal of the whole zip for a path leaving it or a link."""
    path = PurePosixPath(entry.filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UserInputError(f"{name}: entry '{entry.filename}' points outside the archive; nothing "
                             "was extracted from it. Zip the folder itself, with relative paths.")
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise UserInputError(f"{name}: entry '{entry.filename}' is a symbolic link; links are not accepted; "
                             "nothing was extracted from it.")
    return tuple(part for part in path.parts if part not in ("", "."))


def _create(root: Path, parts: tuple[str, ...]) -> BinaryIO:
    """A new file for an entry under `root`: its own name, or 'name (2).ext'… when that is taken."""
    folder = root.joinpath(*parts[:-1])
    folder.mkdir(parents=True, exist_ok=True)
    target, number = folder / parts[-1], 1
    while True:
        try:
            return open(target, "xb")  # the caller closes it
        except (FileExistsError, IsADirectoryError):
            number += 1
            target = folder / numbered(parts[-1], number, max_bytes=MAX_NAME_BYTES)


def _unwritable(exc: OSError) -> str:
    """Why an entry cannot be a file here, in the user's terms."""
    if exc.errno == errno.ENAMETOOLONG:
        return (f"its name is longer than a file system allows ({MAX_NAME_BYTES} bytes per file or folder name); "
                "it was skipped. Shorten the name")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a file in the zip has the name of this entry's folder; it was skipped. Rename one of them"
    return f"cannot be extracted ({exc.strerror or exc}); it was skipped"


def find_folder_with(root: Path, child: str, display_name: str = "the archive") -> Path:
    """The shallowest folder under `root` (itself included) that has a sub-folder named `child`."""
    candidates = sorted((p.parent for p in root.rglob(child) if p.is_dir()), key=lambda p: len(p.parts))
    if (root / child).is_dir():
        return root
    if not candidates:
        raise UserInputError(f"{display_name}: no '{child}/' folder found in it.")
    return candidates[0]


SYSTEM_FILES = (".ds_store", "thumbs.db", "desktop.ini")


def _system_file(path: Path) -> bool:
    """A file the zipping computer added, not the user: macOS's '._photo.jpg' twins (an image's suffix, no image)
    and __MACOSX/, .DS_Store, Windows' Thumbs.db and desktop.ini."""
    return path.name.startswith("._") or "__MACOSX" in path.parts or path.name.lower() in SYSTEM_FILES


def expand_archives(
    files: Sequence[tuple[str, Path]], work_dir: Path, accepted_suffixes: Sequence[str], *,
    named_under_zip: bool = True, refuse_bad_zip: bool = False,
) -> tuple[list[tuple[str, Path]], list[dict[str, str]]]:
    """Replace each uploaded .zip by the accepted files inside it, named '<zip>/<path inside>' (or, with
    `named_under_zip=False`, by their path inside: annotations in a zip name their images so).

    A zip that cannot be extracted safely (refused with `refuse_bad_zip`), entries that cannot be
    extracted, and entries of another type (nested archives included: they are never opened) are
    returned as skipped items with the reason; the rest goes on. The names returned are distinct, so
    every result row names one file.
    """
    expanded: list[tuple[str, Path]] = []
    skipped: list[dict[str, str]] = []
    for index, (name, path) in enumerate(files):
        if Path(name).suffix.lower() != ".zip":
            expanded.append((name, path))
            continue
        try:
            root = extract_zip(path, work_dir / f"archive_{index:03d}", display_name=name, skipped=skipped)
        except UserInputError as exc:
            if refuse_bad_zip:
                raise
            skipped.append({"file": name, "error": str(exc)})
            continue
        entries = sorted(p for p in root.rglob("*") if p.is_file())
        for entry in entries:
            inner = f"{name}/{entry.relative_to(root).as_posix()}"
            kept_name = inner if named_under_zip else entry.relative_to(root).as_posix()
            suffix = entry.suffix.lower()
            if _system_file(entry.relative_to(root)):
                continue
            if suffix in accepted_suffixes:
                expanded.append((kept_name, entry))
            elif suffix in (".zip", ".tar", ".gz", ".tgz", ".7z", ".rar"):
                skipped.append({"file": inner, "error": f"{inner}: archives inside archives are not opened; "
                                                        "put the files in the top-level zip."})
            elif not entry.name.startswith("."):  # other hidden files (.gitignore…) are left out unlisted, as before
                skipped.append({"file": inner, "error": f"{inner}: not an accepted file type "
                                                        f"({', '.join(accepted_suffixes)})."})
        if not entries:
            skipped.append({"file": name, "error": f"{name}: the zip is empty."})
    names = distinct_names(name for name, _ in expanded)  # an upload may share a zip entry's name
    return list(zip(names, (path for _, path in expanded), strict=True)), skipped
