"""engine.files.write_atomically: a reader sees the previous file or the new one, whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.files import write_atomically


def test_text_and_bytes_replace_the_file(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    write_atomically(target, "first ü")
    assert target.read_text(encoding="utf-8") == "first ü"
    write_atomically(target, b"\x00second")
    assert target.read_bytes() == b"\x00second"
    assert os.listdir(tmp_path) == ["record.json"]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_staging_file(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "record.json"
    write_atomically(target, "kept")

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        write_atomically(target, "lost")
    assert target.read_text() == "kept"
    assert os.listdir(tmp_path) == ["record.json"]
