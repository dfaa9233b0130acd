"""Annotated images for few-shot detection, read as the annotation-completion tool reads them.

Images and COCO JSON, YOLO txt (+ class names) or Pascal VOC XML, or zips of them, go through
`engine.annotations.read.read_uploads`: a bad annotation or an image that does not decode is listed
in `skipped` and the rest loads. On top of that, what a detector cannot be trained from is refused
with what to fix: no boxes, a class without boxes, two classes whose names differ only in case, more
images than the configured limit. One class is fine: a detector of one kind of object is common.
Images without boxes stay in the set as background (they show what not to box).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from engine.annotations.dataset import Dataset
from engine.annotations.read import read_uploads
from engine.errors import UserInputError
from engine.finetune.training import max_training_images
from engine.params import NamedFile


def check_detection_set(dataset: Dataset) -> Dataset:
    """The set, if a detector can be trained from it; otherwise a UserInputError saying what to fix.

    An image whose every annotation was skipped is left out (and listed): kept with no boxes, it would teach the
    detector that its objects are background.
    """
    unboxed = [image for image in dataset.images if image.skipped_boxes and not image.boxes]
    for image in unboxed:
        dataset.skipped.append({"file": image.file_name, "error": (
            f"{image.file_name}: none of its {image.skipped_boxes} annotation(s) could be used (why is listed above); "
            "left out of training, since an image without boxes is taught as one with nothing to find.")})
    dataset.images = [image for image in dataset.images if image.boxes or not image.skipped_boxes]
    if len(dataset.images) > max_training_images():
        raise UserInputError(f"{len(dataset.images)} images given; at most {max_training_images()} are accepted for "
                             "few-shot training (FEWSHOT_FINETUNE_MAX_IMAGES). Use a sample of the images.")
    if not dataset.box_count:
        raise UserInputError("No annotated boxes were found: a detector learns from boxes. Upload the images with "
                             "their annotations (COCO JSON, YOLO txt + classes.txt, or Pascal VOC XML)."
                             + dataset.skipped_note())
    folded: dict[str, str] = {}
    for name in dataset.categories:
        if name.casefold() in folded:
            raise UserInputError(f"Duplicate class name '{name}' (and '{folded[name.casefold()]}'): class names must "
                                 "be unique; merge the boxes into one class or rename one of them.")
        folded[name.casefold()] = name
    counts = Counter(box.category for image in dataset.images for box in image.boxes)
    empty = [name for name in dataset.categories if not counts[name]]
    if empty:
        raise UserInputError(f"Class '{empty[0]}' has no boxes: annotate at least one '{empty[0]}' or remove it "
                             "from the class list.")
    return dataset


def load_detection_set(files: Sequence[NamedFile], work_dir: Path, format: str = "auto") -> Dataset:
    """Read and check uploaded images and annotations (zips are extracted into `work_dir`)."""
    return check_detection_set(read_uploads(files, work_dir, format))


def split_held_out(dataset: Dataset, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded (train, held-out) image indices: about `fraction` of the images with boxes held out.

    An image is held out only if every class it contains keeps a box in the training images, so that
    each class can be learnt; background images (no boxes) always train; with fewer than 2 annotated
    images nothing is held out.
    """
    annotated = [index for index, image in enumerate(dataset.images) if image.boxes]
    random.Random(seed).shuffle(annotated)
    target = min(len(annotated) - 1, round(len(annotated) * fraction)) if len(annotated) >= 2 else 0
    left = Counter(box.category for image in dataset.images for box in image.boxes)
    held: list[int] = []
    for index in annotated:
        if len(held) == target:
            break
        boxes = Counter(box.category for box in dataset.images[index].boxes)
        if all(left[name] > count for name, count in boxes.items()):
            held.append(index)
            left -= boxes
    return sorted(set(range(len(dataset.images))) - set(held)), sorted(held)


KSHOT_SAMPLING = ("K images per class: classes in a seeded order, each gets images that contain it (seeded) until "
                  "K training images contain it; an image chosen for one class counts for every class it holds, "
                  "so a class seen beside others may get more than K. The other annotated images are tested; "
                  "images without boxes are left out.")


def sample_shots(dataset: Dataset, shots: int, seed: int) -> tuple[list[int], list[int]]:
    """Seeded (train, test) image indices of K-shot detection, as KSHOT_SAMPLING says (K images per class, as
    few-shot detection benchmarks like MoFSOD sample them, rather than K boxes)."""
    annotated = [index for index, image in enumerate(dataset.images) if image.boxes]
    holding = {name: [i for i in annotated if any(b.category == name for b in dataset.images[i].boxes)]
               for name in dataset.categories}
    for name, images in holding.items():
        if len(images) <= shots:
            raise UserInputError(f"Class '{name}' is in {len(images)} images; {shots}-shot evaluation needs more than "
                                 f"{shots} images with a '{name}' (the rest are the test images).")
    rng = random.Random(seed)
    order = list(dataset.categories)
    rng.shuffle(order)
    chosen: set[int] = set()
    for name in order:
        candidates = list(holding[name])
        rng.shuffle(candidates)
        for index in candidates:
            if len(chosen.intersection(holding[name])) >= shots:
                break
            chosen.add(index)
    return sorted(chosen), sorted(set(annotated) - chosen)
