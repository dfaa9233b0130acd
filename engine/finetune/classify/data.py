"""Labelled examples for classification: a folder per class, a zip of that layout, or named uploads.

Decoding goes through `engine.media`; unreadable files are listed and skipped, and every problem a
user can fix (an empty class, one class only, duplicate names, too many images) is a UserInputError.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NoReturn

from PIL import Image

from engine.archives import expand_archives
from engine.errors import UserInputError
from engine.filetypes import IMAGE_SUFFIXES
from engine.finetune.classify import named_class
from engine.finetune.training import max_training_images
from engine.limits import quoted
from engine.media import list_images, load_images
from engine.params import NamedFile


@dataclass
class LabelledSet:
    """Decoded images with their class index; `skipped` lists files that could not be used, `notes` the files used
    only in part (the first page of a TIFF)."""

    classes: list[str]
    names: list[str] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def indices_of(self, label: int) -> list[int]:
        return [i for i, y in enumerate(self.labels) if y == label]


LAYOUT = ("one folder per class, all at the same level, each holding its images (e.g. cats/ and dogs/, or "
          "dataset/cats/ and dataset/dogs/)")
FOLDERS_NAMED = 8  # folders a refusal lists; the rest are counted
OUTSIDE_LISTED = 20  # images in no class folder listed by name; the rest are counted


def class_folders(entries: Sequence[NamedFile], origin: str) -> dict[str, list[NamedFile]]:
    """{class: files} from images named by their path in a folder or zip: the classes are the deepest folders
    holding images, by name ('dataset/cats/', 'dataset/dogs/': cats and dogs; so 'cats/a/', 'cats/b/' are classes a
    and b, not one class cats). Images in a folder above them ('set/cover.png') are in no class (the caller lists
    them). Class folders at different depths ('cats/', 'more/dogs/') are used when their names differ and no folder
    above them holds images but the top; otherwise, as with two class folders of one name, the layout is unclear
    and refused, naming the folders found."""
    found = [(PurePosixPath(name).parts, path) for name, path in entries if not _in_system_folder(name)]
    holding: dict[tuple[str, ...], list[NamedFile]] = {}
    for parts, path in found:
        holding.setdefault(parts[:-1], []).append(("/".join(parts[-2:]), path))
    leaves = _deepest(holding)
    if not leaves:
        raise UserInputError(f"No class folders with images found in {origin}: use {LAYOUT}; image files "
                             f"{', '.join(IMAGE_SUFFIXES)}.")
    by_name: dict[str, list[tuple[str, ...]]] = {}
    for folder in sorted(leaves):
        by_name.setdefault(folder[-1].strip().casefold(), []).append(folder)
    same = next((folders for folders in by_name.values() if len(folders) > 1), None)
    if same:
        _refuse_layout(origin, holding, f"{_shown(same[0])} and {_shown(same[1])} would be two classes of one name")
    above = sorted(set(holding) - set(leaves) - {()})
    if len({len(folder) for folder in leaves}) > 1 and above:
        _refuse_layout(origin, holding, f"{_shown(above[0])} holds images and so do folders inside it")
    return {folder[-1]: holding[folder] for folder in sorted(leaves, key=lambda folder: folder[-1])}


def _in_system_folder(name: str) -> bool:
    """Whether a file lies in a folder no one made for the examples: a Mac's `__MACOSX/` copies of a zip's files, or
    a hidden folder (`.ipynb_checkpoints/`, `.git/`): neither a class nor an image left out of one."""
    return any(part == "__MACOSX" or part.startswith(".") for part in PurePosixPath(name).parts[:-1])


def _deepest(folders: Collection[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The folders (but the top) with none of the others inside them. In sorted order a folder holding another is
    followed by one inside it, so each is compared with its successor only: listing every folder above each (a zip's
    thousands of folders nested a thousand deep) took minutes."""
    ordered = sorted(folders)
    return [folder for folder, after in itertools.pairwise([*ordered, None])
            if folder and (after is None or after[:len(folder)] != folder)]


def _refuse_layout(origin: str, holding: dict[tuple[str, ...], list[NamedFile]], why: str) -> NoReturn:
    """Which folder is a class is unclear: say why, where the images are, and the layout accepted."""
    folders = [f"{_shown(folder)} ({len(files)})" for folder, files in sorted(holding.items()) if folder]
    more = f" and {len(folders) - FOLDERS_NAMED} more" if len(folders) > FOLDERS_NAMED else ""
    raise UserInputError(f"The class folders of {origin} are unclear: {why}. Folders with images (images): "
                         f"{', '.join(folders[:FOLDERS_NAMED])}{more}. Use {LAYOUT}.")


def _shown(folder: tuple[str, ...]) -> str:
    return quoted("/".join(folder) + "/")


def outside_the_classes(names: Sequence[str], origin: str) -> list[dict[str, str]]:
    """What is left out of `origin` for lying in no class folder: the first OUTSIDE_LISTED images each by name, the
    rest counted in one entry (a zip of 20,000 images beside one class folder listed them all in the job's record
    and its status line)."""
    left_out = [{"file": name, "error": f"{name}: not inside a class folder; left out (move it into the folder of "
                                        "its class)."} for name in names[:OUTSIDE_LISTED]]
    if len(names) > OUTSIDE_LISTED:
        left_out.append({"file": f"{origin}/…", "error": f"{len(names) - OUTSIDE_LISTED} more images of {origin}: not "
                                                          "inside a class folder; left out."})
    return left_out


def gather_sources(sources: Sequence[NamedFile] = (), uploads: Sequence[tuple[str, Sequence[NamedFile]]] = (),
                   work_dir: Path | None = None) -> tuple[dict[str, list[NamedFile]], list[dict[str, str]]]:
    """Merge every way of giving examples (folders or zips with a folder per class, named uploads) into
    ({class name: [(display name, path)]}, what was left out); zips go through `engine.archives`, whose
    entries that cannot be extracted are left out and listed, while a zip that cannot be opened at all is
    refused by name.

    Class names are stripped and held to the rules of an annotation set's names (`class_name_problem`); the same
    name twice (ignoring case) is refused, naming both places, since the user most likely meant two different
    classes or typed one twice.
    """
    by_class: dict[str, list[NamedFile]] = {}
    seen: dict[str, str] = {}
    skipped: list[dict[str, str]] = []

    def add(name: str, files: Sequence[NamedFile], origin: str) -> None:
        name = named_class(name, origin[0].upper() + origin[1:])
        key = name.casefold()
        if key in seen:
            raise UserInputError(f"Duplicate class name '{name}' ({seen[key]} and {origin}): class names must be "
                                 "unique; merge the images into one class or rename one of them.")
        seen[key] = origin
        by_class[name] = list(files)

    for index, (display, source) in enumerate(sources):
        if Path(source).is_dir():
            entries = [(p.relative_to(source).as_posix(), p) for p in list_images(Path(source), recursive=True)]
            prefix = ""
        else:
            if work_dir is None:
                raise ValueError("work_dir is needed to extract archives")
            files, left_out = expand_archives([(display, Path(source))], work_dir / f"classes_{index:03d}",
                                              IMAGE_SUFFIXES)
            refused = next((item for item in left_out if item["file"] == display), None)
            if refused and not files:
                raise UserInputError(refused["error"])
            skipped += left_out
            entries, prefix = [(name.removeprefix(f"{display}/"), path) for name, path in files], f"{display}/"
        classes = class_folders(entries, display)
        for name, files in classes.items():
            add(name, [(prefix + n, p) for n, p in files], f"the folder {quoted(name)} of {display}")
        used = {path for files in classes.values() for _, path in files}
        skipped += outside_the_classes([prefix + name for name, path in entries
                                        if path not in used and not _in_system_folder(name)], display)
    for index, (name, files) in enumerate(uploads):
        add(name, files, f"named class {index + 1}")
    return by_class, skipped


def load_labelled_set(by_class: dict[str, list[NamedFile]],
                      skipped: Sequence[dict[str, str]] = ()) -> LabelledSet:
    """Decode every class's images; refuse sets that cannot train a classifier, saying why.

    `skipped` is what gathering left out already (zip entries the disk cannot hold): it heads the set's
    `skipped`, so the job's result and the CLI list it with the images that did not decode.
    """
    if len(by_class) < 2:
        found = f"only '{next(iter(by_class))}'" if by_class else "none"
        raise UserInputError(f"A classifier needs at least two classes with images; found {found}. "
                             "Add a class (e.g. OK and NG).")
    total = sum(len(files) for files in by_class.values())
    if total > max_training_images():
        raise UserInputError(f"{total} images given; at most {max_training_images()} are accepted for few-shot "
                             "training (FEWSHOT_FINETUNE_MAX_IMAGES). Use a sample of each class.")
    data = LabelledSet(classes=list(by_class), skipped=list(skipped))
    for label, (name, files) in enumerate(by_class.items()):
        if not files:
            raise UserInputError(f"Class '{name}' has no images: add at least one image or remove the class.")
        try:
            names, images, skipped = load_images(files, what=f"images of class '{name}'", notes=data.notes)
        except UserInputError as exc:
            raise UserInputError(f"Class '{name}' has no usable images: {exc}") from None
        data.names += names
        data.images += images
        data.labels += [label] * len(images)
        data.skipped += skipped
    return data


def load_retention_set(sources: Sequence[NamedFile], work_dir: Path | None = None) -> LabelledSet | None:
    """The user's retention images (folders or zips with a folder per class), or None when none are given."""
    if not sources:
        return None
    try:
        return load_labelled_set(*gather_sources(sources, work_dir=work_dir))
    except UserInputError as exc:
        raise UserInputError(f"Retention images: {exc}") from None


def split_held_out(data: LabelledSet, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified (train, held-out) indices: per class round(n x fraction) held out, at least one each
    when the class has 2 or more images, and always at least one left to train on."""
    rng = random.Random(seed)
    train, held = [], []
    for label in range(len(data.classes)):
        indices = data.indices_of(label)
        rng.shuffle(indices)
        n_held = 0
        if len(indices) >= 2 and fraction > 0:
            n_held = min(len(indices) - 1, max(1, round(len(indices) * fraction)))
        held += indices[:n_held]
        train += indices[n_held:]
    return sorted(train), sorted(held)


KSHOT_SAMPLING = "K images per class (seeded) to train on; the other images of each class are tested."


def sample_shots(data: LabelledSet, shots: int, seed: int) -> tuple[list[int], list[int]]:
    """K images per class to train on and the rest to test on (K-shot sampling, as MoFSOD does)."""
    rng = random.Random(seed)
    train, test = [], []
    for label, name in enumerate(data.classes):
        indices = data.indices_of(label)
        if len(indices) <= shots:
            raise UserInputError(f"Class '{name}' has {len(indices)} images; {shots}-shot evaluation needs more "
                                 f"than {shots} (the rest are the test images).")
        rng.shuffle(indices)
        train += indices[:shots]
        test += indices[shots:]
    return sorted(train), sorted(test)
