"""Zip uploads: traversal, links, bombs and counts are refused with the entry named."""

from __future__ import annotations

import stat
import zipfile

import pytest

from engine.archives import extract_zip, find_folder_with
from engine.errors import UserInputError


def make_zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in entries:
            if isinstance(data, zipfile.ZipInfo):
                bundle.writestr(data, b"target")
            else:
                bundle.writestr(name, data)
    return path


def test_a_normal_archive_is_extracted(tmp_path):
    archive = make_zip(tmp_path / "set.zip", [("cat/test/good/a.png", b"x"), ("cat/inner.zip", b"PK nested")])
    out = extract_zip(archive, tmp_path / "out")
    assert (out / "cat" / "test" / "good" / "a.png").read_bytes() == b"x"
    assert (out / "cat" / "inner.zip").read_bytes() == b"PK nested"  # nested archives are not opened
    assert find_folder_with(out, "test") == out / "cat"


@pytest.mark.parametrize("evil", ["../escape.png", "a/../../escape.png", "/etc/cron.d/x", "C:/windows/x.png"])
def test_entries_pointing_outside_are_refused(tmp_path, evil):
    archive = make_zip(tmp_path / "evil.zip", [("ok.png", b"x"), (evil, b"y")])
    with pytest.raises(UserInputError, match="points outside the archive"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "escape.png").exists()


def test_symbolic_links_are_refused(tmp_path):
    link = zipfile.ZipInfo("link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(UserInputError, match="symbolic link"):
        extract_zip(make_zip(tmp_path / "l.zip", [("link.png", link)]), tmp_path / "out")


def test_too_many_entries_and_too_many_bytes(tmp_path):
    many = make_zip(tmp_path / "many.zip", [(f"{i}.png", b"x") for i in range(5)])
    with pytest.raises(UserInputError, match="5 entries; at most 4"):
        extract_zip(many, tmp_path / "o1", max_files=4)
    bomb = make_zip(tmp_path / "bomb.zip", [("zeros.bin", b"\0" * 5_000_000)])
    assert bomb.stat().st_size < 50_000
    with pytest.raises(UserInputError, match="5,000,000 bytes uncompressed; at most 1,000,000"):
        extract_zip(bomb, tmp_path / "o2", max_bytes=1_000_000)


def test_not_a_zip(tmp_path):
    fake = tmp_path / "data.zip"
    fake.write_text("plain text")
    with pytest.raises(UserInputError, match=r"data\.zip: not a readable zip archive"):
        extract_zip(fake, tmp_path / "out")


def test_an_archive_without_the_expected_folder(tmp_path):
    out = extract_zip(make_zip(tmp_path / "x.zip", [("images/a.png", b"x")]), tmp_path / "out")
    with pytest.raises(UserInputError, match="the archive: no 'test/' folder found"):
        find_folder_with(out, "test")
