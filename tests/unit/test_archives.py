"""Zip uploads: traversal, links, bombs and counts refused with the entry named; entries a disk cannot hold skipped."""

from __future__ import annotations

import stat
import zipfile

import pytest

from engine.archives import expand_archives, extract_zip, find_folder_with
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


def test_entries_the_file_system_cannot_hold_are_skipped_and_the_rest_extracted(tmp_path):
    long_name = "x" * 300 + ".png"  # one component over 255 bytes
    archive = make_zip(tmp_path / "odd.zip", [("a.png", b"file"), ("a.png/b.png", b"inside"), (long_name, b"long"),
                                              ("ok/c.png", b"c"), ("ok/" + "é" * 125 + ".png", b"255 bytes")])
    skipped = []
    out = extract_zip(archive, tmp_path / "out", display_name="odd.zip", skipped=skipped)
    assert (out / "a.png").read_bytes() == b"file" and (out / "ok" / "c.png").read_bytes() == b"c"
    assert (out / "ok" / ("é" * 125 + ".png")).read_bytes() == b"255 bytes"
    by_file = {item["file"]: item["error"] for item in skipped}
    assert set(by_file) == {"odd.zip/a.png/b.png", f"odd.zip/{long_name}"}
    assert "has the name of this entry's folder" in by_file["odd.zip/a.png/b.png"]
    assert "longer than a file system allows (255 bytes" in by_file[f"odd.zip/{long_name}"]
    with pytest.raises(UserInputError, match=r"a\.png/b\.png: a file in the zip has the name"):
        extract_zip(archive, tmp_path / "strict")  # no list to report to: refused by name, not a crash


def test_a_folder_before_a_file_of_its_name_keeps_both(tmp_path):
    archive = make_zip(tmp_path / "f.zip", [("a.png/b.png", b"inside"), ("a.png", b"file")])
    out = extract_zip(archive, tmp_path / "out", skipped=(skipped := []))
    assert not skipped and (out / "a.png" / "b.png").read_bytes() == b"inside"
    assert (out / "a (2).png").read_bytes() == b"file"


def test_duplicate_entries_are_both_kept_under_distinct_names(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
        archive = make_zip(tmp_path / "dup.zip", [("img/000.png", b"first"), ("img/000.png", b"second"),
                                                  ("img/000 (2).png", b"third")])
    files, skipped = expand_archives([("dup.zip", archive), ("000.png", archive)], tmp_path / "w", [".png"])
    assert not skipped
    contents = {name: path.read_bytes() for name, path in files if name.startswith("dup.zip/")}
    assert sorted(contents.values()) == [b"first", b"second", b"third"] and len(contents) == 3
    assert contents["dup.zip/img/000.png"] == b"first"
    assert len({name for name, _ in files}) == len(files)


def test_a_bad_entry_is_listed_by_expand_archives_and_the_batch_goes_on(tmp_path):
    archive = make_zip(tmp_path / "mixed.zip", [("a.png", b"a"), ("a.png/b.png", b"b"), ("y" * 256 + ".png", b"y"),
                                                ("good.png", b"g")])
    files, skipped = expand_archives([("mixed.zip", archive)], tmp_path / "w", [".png"])
    assert [name for name, _ in files] == ["mixed.zip/a.png", "mixed.zip/good.png"]
    assert {item["file"] for item in skipped} == {"mixed.zip/a.png/b.png", f"mixed.zip/{'y' * 256}.png"}


def test_a_refused_zip_writes_nothing_even_after_good_entries(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", [("ok.png", b"x"), ("../escape.png", b"y")])
    with pytest.raises(UserInputError, match="points outside the archive; nothing was extracted"):
        extract_zip(archive, tmp_path / "out", skipped=[])
    assert not (tmp_path / "out" / "ok.png").exists() and not (tmp_path / "escape.png").exists()


def without_utf8_flag(archive):
    """The zip as Info-ZIP's `zip` writes it: UTF-8 names, the UTF-8 flag (bit 11) not set."""
    data = bytearray(archive.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers' flags
        start = data.find(signature)
        while start >= 0:
            data[start + offset + 1] &= ~0x08
            start = data.find(signature, start + 4)
    archive.write_bytes(bytes(data))
    return archive


def test_utf8_names_without_the_utf8_flag_keep_their_letters(tmp_path):
    names = ["carte 0 Ω.PNG", "défaut/plaque Ünï.JPG", "plain.png"]
    archive = without_utf8_flag(make_zip(tmp_path / "set.zip", [(name, b"x") for name in names]))
    assert "carte 0 ╬⌐.PNG" in zipfile.ZipFile(archive).namelist()  # what Python reads without help
    out = extract_zip(archive, tmp_path / "out")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(names)


def test_cp437_names_are_kept(tmp_path):
    archive = make_zip(tmp_path / "old.zip", [("cafXX.png", b"x")])
    archive.write_bytes(archive.read_bytes().replace(b"cafXX", b"caf\x82\x82"))  # éé in cp437, not UTF-8: as DOS
    assert [p.name for p in extract_zip(archive, tmp_path / "out").iterdir()] == ["caf\u00e9\u00e9.png"]


def test_files_the_zipping_computer_added_are_neither_used_nor_listed(tmp_path):
    """macOS's '._photo.JPG' twins have an image's suffix but hold no image; listing them (or Thumbs.db) as
    skipped files would name files the user never saw."""
    archive = make_zip(tmp_path / "set.zip", [
        ("ok/photo.JPG", b"j"), ("ok/._photo.JPG", b"\x00\x05\x16\x07"), ("ok/.DS_Store", b"d"),
        ("__MACOSX/ok/._photo.JPG", b"m"), ("ok/Thumbs.db", b"t"), ("ok/desktop.ini", b"i"), ("ok/notes.docx", b"n"),
        ("ok/.named with a dot.jpg", b"d")])
    files, skipped = expand_archives([("set.zip", archive)], tmp_path / "w", [".jpg"])
    assert [name for name, _ in files] == ["set.zip/ok/.named with a dot.jpg", "set.zip/ok/photo.JPG"]
    assert [item["file"] for item in skipped] == ["set.zip/ok/notes.docx"]
