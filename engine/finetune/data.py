"""Labelled examples for classification: a folder per class, a zip of that layout, or named uploads.

Decoding goes through `engine.media`; unreadable files are listed and skipped, and every problem a
user can fix (an empty class, one class only, duplicate names, too many images) is a UserInputError.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from engine.archives import extract_zip
from engine.errors import UserInputError
from engine.filetypes import IMAGE_SUFFIXES
from engine.media import list_images, load_images

DEFAULT_MAX_IMAGES = 2000


def max_training_images() -> int:
    """Most labelled images accepted in one training set (FEWSHOT_FINETUNE_MAX_IMAGES)."""
    return int(os.environ.get("FEWSHOT_FINETUNE_MAX_IMAGES", DEFAULT_MAX_IMAGES))


@dataclass
class LabelledSet:
    """Decoded images with their class index; `skipped` lists files that could not be used."""

    classes: list[str]
    names: list[str] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def indices_of(self, label: int) -> list[int]:
        return [i for i, y in enumerate(self.labels) if y == label]

    def subset(self, indices: Sequence[int]) -> LabelledSet:
        return LabelledSet(self.classes, [self.names[i] for i in indices], [self.images[i] for i in indices],
                           [self.labels[i] for i in indices])


def _has_images(folder: Path) -> bool:
    return bool(list_images(folder, recursive=True))


def class_folders(root: Path, display_name: str | None = None) -> dict[str, list[tuple[str, Path]]]:
    """{class: files} from a folder whose sub-folders are the classes (the shallowest such folder below `root`).

    A zip often wraps the layout in one more folder; that folder is looked through.
    """
    level = [root]
    while level:
        for folder in level:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "__MACOSX"
                              and not p.name.startswith("."))
            if any(list_images(child) for child in children):
                return {child.name: [(f"{child.name}/{p.relative_to(child).as_posix()}", p)
                                     for p in list_images(child, recursive=True)] for child in children}
        level = [c for f in level for c in sorted(f.iterdir()) if c.is_dir() and _has_images(c)]
    raise UserInputError(f"No class folders with images found in {display_name or root}: use one folder per class, "
                         f"each holding its images ({', '.join(IMAGE_SUFFIXES)}).")


def gather_sources(folders: Sequence[Path] = (), archives: Sequence[tuple[str, Path]] = (),
                   uploads: Sequence[tuple[str, Sequence[tuple[str, Path]]]] = (),
                   work_dir: Path | None = None,
                   skipped: list[dict[str, str]] | None = None) -> dict[str, list[tuple[str, Path]]]:
    """Merge every way of giving examples into {class name: [(display name, path)]}; zip entries that cannot
    be extracted go to `skipped` (without it they are refused by name).

    Class names are stripped; the same name from two sources (ignoring case) is refused, since the
    user most likely meant two different classes or typed one twice.
    """
    by_class: dict[str, list[tuple[str, Path]]] = {}
    seen: dict[str, str] = {}

    def add(name: str, files: Sequence[tuple[str, Path]], origin: str) -> None:
        name = name.strip()
        if not name:
            raise UserInputError(f"A class in {origin} has no name: give every class a name.")
        key = name.casefold()
        if key in seen:
            raise UserInputError(f"Duplicate class name '{name}' ({origin} and {seen[key]}): class names must be "
                                 "unique; merge the images into one class or rename one of them.")
        seen[key] = origin
        by_class[name] = list(files)

    for folder in folders:
        for name, files in class_folders(Path(folder)).items():
            add(name, files, str(folder))
    for index, (display, archive) in enumerate(archives):
        if work_dir is None:
            raise ValueError("work_dir is needed to extract archives")
        root = extract_zip(archive, work_dir / f"classes_{index:03d}", display_name=display, skipped=skipped)
        for name, files in class_folders(root, display).items():
            add(name, [(f"{display}/{n}", p) for n, p in files], display)
    for name, files in uploads:
        add(name, files, "the uploads")
    return by_class


def load_labelled_set(by_class: dict[str, list[tuple[str, Path]]],
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
            names, images, skipped = load_images(files, what=f"images of class '{name}'")
        except UserInputError as exc:
            raise UserInputError(f"Class '{name}' has no usable images: {exc}") from None
        data.names += names
        data.images += images
        data.labels += [label] * len(images)
        data.skipped += skipped
    return data


def split_held_out(data: LabelledSet, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified (train, held-out) indices: per class round(n x fraction) held out, at least one each
    when the class has 2 or more images, and always at least one left to train on."""
    if not 0.0 <= fraction < 1.0:
        raise UserInputError(f"The held-out fraction must be in [0, 1), not {fraction}.")
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
