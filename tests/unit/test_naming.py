"""Output keys: any display name gives a safe, byte-bounded key, unique within a job; same names told apart."""

from __future__ import annotations

import pytest

from engine.naming import MAX_NAME_BYTES, distinct_names, file_key, is_key, numbered

AWKWARD = ["my part 1.png", "café.png", "部品 1.png", "a" * 251 + ".png", "é" * 125 + ".png", "../../etc/passwd",
           ".hidden.png", "a\\b.png", "...", "", "x.png\0.jpg", "tab\there.png", "😀" * 60 + ".png"]


@pytest.mark.parametrize("name", AWKWARD)
@pytest.mark.parametrize("suffix", [None, "_map.png", "_overlay.png", ".jpg"])
def test_every_name_gives_a_safe_key_well_within_a_file_name(name, suffix):
    key = file_key(name, 12345, suffix, prefix="preview_")
    assert is_key(key) and not key.startswith(".") and "/" not in key and "\\" not in key and "\0" not in key
    assert len(key.encode()) <= 160 < MAX_NAME_BYTES  # room for longer suffixes too
    assert key.startswith("preview_12345_")


def test_keys_keep_a_readable_name_and_a_plain_extension():
    assert file_key("my part 1.png", 0, "_map.png") == "000_my_part_1_map.png"
    assert file_key("café.png", 1) == "001_café.png"
    assert file_key("部品 1.png", 2, "_overlay.png") == "002_部品_1_overlay.png"
    assert file_key("clip.MP4", 3) == "003_clip.MP4" and file_key("weird.p n g", 4) == "004_weird.p_n_g"
    assert file_key("set.zip/folder/x.png", 5) == "005_x.png"


def test_keys_of_a_job_are_unique_even_for_equal_or_long_names():
    names = ["000.png", "000.png", "a" * 251 + ".png", "a" * 251 + ".png", "a" * 250 + "b.png", "café.png",
             "cafe\u0301.png"]  # the last is café in decomposed form
    keys = [file_key(name, index, "_map.png") for index, name in enumerate(names)]
    assert len(set(keys)) == len(keys)


def test_is_key_refuses_what_could_leave_a_folder():
    for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".job.json", "x\0y", "a" * 256]:
        assert not is_key(bad), bad
    assert is_key("a" * 255) and is_key("000_部品_1_map.png")


def test_same_names_are_told_apart_without_taking_a_given_name():
    assert distinct_names(["000.png", "000.png", "000 (2).png", "z.zip/a.png", "z.zip/a.png", "b.png"]) == [
        "000.png", "000 (3).png", "000 (2).png", "z.zip/a.png", "z.zip/a (2).png", "b.png"]
    assert len(numbered("a" * 251 + ".png", 12, max_bytes=MAX_NAME_BYTES).encode()) <= MAX_NAME_BYTES
    told_apart = distinct_names(["é" * 125 + "a.png"] * 3)  # 255 bytes: ' (2)' must not push it past a file name
    assert len(set(told_apart)) == 3 and all(len(name.encode()) <= MAX_NAME_BYTES for name in told_apart)
