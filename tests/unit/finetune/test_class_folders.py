"""Which folders of a training zip are its classes: the deepest folders holding images, by name; a layout where that
is unclear (two class folders of one name, or images both in a folder and in folders inside it, at different depths)
is refused with the folders found and the layout accepted."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from engine.errors import UserInputError
from engine.finetune.classify.data import OUTSIDE_LISTED, class_folders, gather_sources


def classes(*names: str) -> dict[str, list[str]]:
    """The classes found among image entries named `names`, with the names of their images."""
    found = class_folders([(name, Path("/unused") / name) for name in names], "set.zip")
    return {name: [shown for shown, _ in files] for name, files in found.items()}


def test_a_top_folder_wrapping_the_class_folders_is_no_class():
    assert classes("dataset/cats/1.jpg", "dataset/cats/2.jpg", "dataset/dogs/1.jpg") == {
        "cats": ["cats/1.jpg", "cats/2.jpg"], "dogs": ["dogs/1.jpg"]}


def test_class_folders_at_different_depths_are_found_by_their_names():
    """'more/dogs/' became a class 'more' beside 'cats'."""
    assert classes("cats/1.jpg", "more/dogs/1.jpg", "more/dogs/2.jpg", "top.jpg") == {
        "cats": ["cats/1.jpg"], "dogs": ["dogs/1.jpg", "dogs/2.jpg"]}  # top.jpg: in no class (listed by the caller)


def test_sub_folders_of_images_in_one_folder_are_the_classes():
    """Whether 'cats/' wraps classes or is a class with sub-folders cannot be told from the layout: the deepest
    folders holding images are the classes, as in a wrapped zip."""
    assert classes("cats/indoor/1.jpg", "cats/outdoor/1.jpg") == {"indoor": ["indoor/1.jpg"],
                                                                   "outdoor": ["outdoor/1.jpg"]}
    assert classes("set/cover.jpg", "set/ok/1.jpg", "set/ng/1.jpg") == {"ng": ["ng/1.jpg"], "ok": ["ok/1.jpg"]}


@pytest.mark.parametrize(("names", "why"), [
    (("train/cats/1.jpg", "train/dogs/1.jpg", "test/cats/1.jpg", "test/dogs/1.jpg"),
     "'test/cats/' and 'train/cats/' would be two classes of one name"),
    (("cats/1.jpg", "more/Cats/1.jpg"), "'cats/' and 'more/Cats/' would be two classes of one name"),
    (("cats/1.jpg", "cats/kittens/1.jpg", "dogs/1.jpg"), "'cats/' holds images and so do folders inside it"),
])
def test_an_unclear_layout_is_refused_with_the_folders_found_and_the_layout_accepted(names, why):
    with pytest.raises(UserInputError) as refused:
        classes(*names)
    message = str(refused.value)
    assert message.startswith(f"The class folders of set.zip are unclear: {why}. Folders with images (images): ")
    assert message.endswith("Use one folder per class, all at the same level, each holding its images (e.g. cats/ "
                            "and dogs/, or dataset/cats/ and dataset/dogs/).")
    assert "'cats/' (1)" in message or "'train/cats/' (1)" in message


def test_a_refusal_lists_a_bounded_number_of_folders():
    names = [f"a/c{n:02d}/1.jpg" for n in range(20)] + [f"b/c{n:02d}/1.jpg" for n in range(20)]
    with pytest.raises(UserInputError, match=r"'a/c07/' \(1\) and 32 more\. Use one folder per class"):
        classes(*names)


def test_no_folder_of_images_is_refused_with_the_layout_accepted():
    with pytest.raises(UserInputError, match=r"^No class folders with images found in set\.zip: use one folder per "
                                             r"class, all at the same level"):
        classes("1.jpg", "2.jpg", "__MACOSX/cats/1.jpg", ".hidden/dogs/1.jpg")
    for names in [(), ("__MACOSX/cats/1.jpg",)]:  # no image at all (a zip of text files): it raised ValueError
        with pytest.raises(UserInputError, match=r"^No class folders with images found in set\.zip"):
            classes(*names)


def test_a_zip_with_class_folders_at_different_depths_gives_their_classes(tmp_path):
    from tests.helpers import colour_classes

    root = colour_classes(tmp_path / "set", per_class=2)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(root.rglob("*.png")):
            bundle.write(path, f"{'more/' if 'blue' in path.parts else ''}{path.relative_to(root)}")
    by_class, left_out = gather_sources([("set.zip", archive)], work_dir=tmp_path / "w")
    assert sorted(by_class) == ["blue", "green", "red"] and left_out == []
    assert [name for name, _ in by_class["blue"]] == ["set.zip/blue/blue_0.png", "set.zip/blue/blue_1.png"]


def test_deeply_nested_class_folders_are_found_in_time_linear_in_the_names():
    """Listing every folder above each one took time quadratic in the depth: a zip's thousand class folders
    nested 1,500 deep (names a file system accepts) took 15 s of a worker, where this takes well under one."""
    deep = "/".join(["a"] * 1500)
    started = time.monotonic()
    found = classes(*(f"{deep}/class{n}/1.png" for n in range(1000)))
    assert len(found) == 1000 and found["class7"] == ["class7/1.png"]
    assert time.monotonic() - started < 5


def test_images_in_no_class_folder_are_listed_up_to_a_bound_then_counted(tmp_path):
    """Each was listed: a zip's 20,000 images beside one class folder put 20,000 entries in the job's record and as
    many lines in its status."""
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("cats/1.png", b"")
        for n in range(500):
            bundle.writestr(f"stray{n:03d}.png", b"")
    by_class, left_out = gather_sources([("set.zip", archive)], work_dir=tmp_path / "w")
    assert list(by_class) == ["cats"] and len(left_out) == OUTSIDE_LISTED + 1
    assert left_out[0] == {"file": "set.zip/stray000.png", "error": "set.zip/stray000.png: not inside a class folder; "
                                                                     "left out (move it into the folder of its class)."}
    assert left_out[-1] == {"file": "set.zip/…", "error": f"{500 - OUTSIDE_LISTED} more images of set.zip: not inside "
                                                          "a class folder; left out."}


def test_images_in_hidden_and_mac_folders_are_neither_classes_nor_listed_as_left_out(tmp_path):
    """A notebook's `.ipynb_checkpoints/` copies were no class but were listed as 'not inside a class folder'."""
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for name in ("cats/1.png", "dogs/1.png", "cats/.ipynb_checkpoints/1-checkpoint.png", "__MACOSX/cats/._1.png",
                     ".git/thumb.png", "cover.png"):
            bundle.writestr(name, b"")
    by_class, left_out = gather_sources([("set.zip", archive)], work_dir=tmp_path / "w")
    assert sorted(by_class) == ["cats", "dogs"]
    assert [item["file"] for item in left_out] == ["set.zip/cover.png"]
