"""File names: the name a user sees versus the key a file is stored under.

A display name is whatever the upload or zip entry was called (spaces, accents, any script, up to
the 255 bytes a file system allows). It is only ever shown. Files written for a job are stored under
a *key* made by `file_key`: safe (no separators, no leading dot), bounded in bytes with room for the
caller's suffix, and unique by its index. The key is what job records list and what every reader
(UI, Jobs → Open, downloads, CLI) looks the file up by, so nothing re-derives a name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import PurePosixPath

MAX_NAME_BYTES = 255  # per path component on common file systems (ext4, XFS, APFS, NTFS in UTF-16 units)
KEY_STEM_BYTES = 100  # readable part of a key: leaves room for an index prefix and suffixes like "_overlay.png"
_NOT_KEY_CHARS = re.compile(r"[^\w.-]+")  # \w keeps letters and digits of every script
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


def brief(text: str, most: int = 60) -> str:
    """A user's text as a message quotes it: whole up to `most` characters, else cut with '…' (a 5,000-character
    id is not echoed back)."""
    return text if len(text) <= most else text[:most - 1] + "…"


def truncate_bytes(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` whose UTF-8 form fits `max_bytes`, never cutting a character."""
    return text.encode("utf-8")[:max(max_bytes, 0)].decode("utf-8", "ignore")


def _readable(name: str, max_bytes: int) -> str:
    """Word characters, dots and dashes of `name` (other runs become one '_'), no leading dots, bounded."""
    text = _NOT_KEY_CHARS.sub("_", unicodedata.normalize("NFC", name))
    return truncate_bytes(text, max_bytes).lstrip(".")


def file_key(name: str, index: int, suffix: str | None = None, prefix: str = "", width: int = 3) -> str:
    """Key of the `index`-th file of a job derived from display `name`: '<prefix><index>_<stem><suffix>'.

    `suffix` defaults to the name's own extension (kept only when it is a plain one, e.g. '.png'), so
    readers that go by extension still work. Unique within a job as long as (prefix, index, suffix)
    is; at most KEY_STEM_BYTES of the name are kept, so the key stays far below MAX_NAME_BYTES.
    """
    base = PurePosixPath(str(name).replace("\\", "/")).name
    own = PurePosixPath(base).suffix
    if suffix is None:
        suffix = own if _SUFFIX.match(own) else ""
    stem = base[: len(base) - len(own)] if own and _SUFFIX.match(own) else base
    readable = _readable(stem, KEY_STEM_BYTES).strip("_") or "file"
    tail = truncate_bytes(_NOT_KEY_CHARS.sub("_", suffix), 40)  # follows the stem: its dot is not leading
    return f"{_readable(prefix, 40)}{index:0{width}d}_{readable}{tail}"


def is_key(name: str) -> bool:
    """Whether `name` can be a stored file's key: one path component, not hidden, within MAX_NAME_BYTES.

    Readers check keys with this instead of re-deriving them, so a stored name is found as written.
    """
    return (isinstance(name, str) and bool(name) and not name.startswith(".") and "/" not in name
            and "\\" not in name and "\0" not in name and len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES)


def numbered(name: str, number: int, max_bytes: int | None = None) -> str:
    """`name` with ' (number)' before its extension ('a.png' -> 'a (2).png'); with `max_bytes`, the stem
    is shortened so the last component still fits."""
    path = PurePosixPath(name)
    tag = f" ({number}){path.suffix}"
    stem = path.stem
    if max_bytes is not None:
        stem = truncate_bytes(stem, max_bytes - len(tag.encode("utf-8")))
    return str(path.with_name(f"{stem}{tag}")) if path.name else f"{name}{tag}"


def distinct_names(names: Iterable[str]) -> list[str]:
    """The names in order, each repeated one told apart as 'a (2).png', 'a (3).png'…, never taking a name
    that is also given, so every table row and output of a job names one file. A told-apart name keeps
    within MAX_NAME_BYTES (its stem is shortened), so files named after it (label files) still fit."""
    names = list(names)
    taken = set(names)
    seen: set[str] = set()
    result = []
    for name in names:
        if name in seen:
            number = 2
            while numbered(name, number, MAX_NAME_BYTES) in taken:
                number += 1
            name = numbered(name, number, MAX_NAME_BYTES)
            taken.add(name)
        seen.add(name)
        result.append(name)
    return result
