"""Reading a set: images plus annotation files in one format, detected from the files or named.

Reading keeps every valid part: an annotation that names a missing image, a box outside its image
or with no area, an unknown class, a malformed line or file is listed in `Dataset.skipped` with the
file and the line, object or id, and the rest loads. Only a file that cannot be read at all as the
format it claims (e.g. COCO JSON that does not parse) stops the import. Uploaded files are only read.
Writers emit what the readers read, so an export imported again gives the same images, boxes and classes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from engine.annotations.coco import read_coco
from engine.annotations.dataset import Dataset, ImageIndex, ImageRecord, skip
from engine.annotations.voc import read_voc
from engine.annotations.yolo import read_yolo
from engine.archives import expand_archives
from engine.errors import UserInputError
from engine.filetypes import ANNOTATION_SUFFIXES, IMAGE_SUFFIXES, YAML_SUFFIXES
from engine.media import load_image
from engine.params import NamedFile

FORMATS = ("coco", "yolo", "voc")


def is_annotation_file(name: str) -> bool:
    suffix = PurePosixPath(name).suffix.lower()
    return suffix in ANNOTATION_SUFFIXES


def _ignored(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)



def probe_images(files: Sequence[tuple[str, Path]], skipped: list[dict[str, str]],
                 notes: list[str] | None = None) -> list[ImageRecord]:
    """Decode each image once (the same checks as every upload) to learn its size; bad ones are skipped, and one
    used only in part (a TIFF's first page) says so in `notes` when given."""
    images = []
    for name, path in files:
        try:
            with load_image(path, display_name=name, notes=notes) as decoded:
                images.append(ImageRecord(name, decoded.width, decoded.height, path=path))
        except UserInputError as exc:
            skip(skipped, name, str(exc))
    return images


def read_dataset(files: Sequence[tuple[str, Path]], format: str = "auto", source: str = "the upload") -> Dataset:
    """A dataset from uploaded files: images plus annotation files in one format ("auto" detects it).

    `files` are (name relative to the upload or archive root, path); `source` names the uploads in
    messages. Images with no annotation are part of the set, with no boxes: they are the ones to complete.
    """
    skipped: list[dict[str, str]] = []
    image_files, annotation_files = [], []
    for name, path in files:
        if _ignored(name):
            continue
        suffix = PurePosixPath(name).suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            image_files.append((name, path))
        elif is_annotation_file(name):
            annotation_files.append((name, path))
        else:
            skip(skipped, name, f"{name}: neither an image ({', '.join(IMAGE_SUFFIXES)}) nor an "
                                 "annotation file (.json, .txt, .xml, classes.txt, data.yaml); ignored.")
    duplicates = [n for n, count in Counter(n for n, _ in image_files).items() if count > 1]
    if duplicates:
        raise UserInputError(f"Two uploaded images are both named {duplicates[0]!r}; rename one of them.")
    notes: list[str] = []
    images = probe_images(image_files, skipped, notes)
    if not images:
        reasons = " ".join(item["error"] for item in skipped)
        raise UserInputError(f"No usable images in {source}. {reasons}".strip())
    chosen = detect_format(annotation_files) if format == "auto" else format
    index = ImageIndex(images)
    if chosen == "coco":
        dataset = read_coco(annotation_files, index, skipped)
    elif chosen == "yolo":
        dataset = read_yolo(annotation_files, index, skipped)
    elif chosen == "voc":
        dataset = read_voc(annotation_files, index, skipped)
    elif chosen == "none":
        dataset = Dataset(images, [], skipped=skipped)
    else:
        raise UserInputError(f"Unknown annotation format {format!r}; accepted: auto, {', '.join(FORMATS)}.")
    dataset.source_format = chosen
    dataset.notes = notes
    return dataset


def detect_format(annotation_files: Sequence[tuple[str, Path]]) -> str:
    """coco, yolo, voc or none, from the annotation files' suffixes; mixing formats is refused."""
    suffixes = {PurePosixPath(name).suffix.lower() for name, _ in annotation_files}
    found = [fmt for fmt, members in (("coco", {".json"}), ("yolo", {".txt", ".names", *YAML_SUFFIXES}),
                                      ("voc", {".xml"})) if suffixes & members]
    if len(found) > 1:
        raise UserInputError(f"The upload mixes annotation formats ({', '.join(found)}): give one format, "
                             "COCO JSON, YOLO txt with class names, or Pascal VOC XML.")
    return found[0] if found else "none"


def gather_files(named: Sequence[NamedFile], work_dir: Path) -> tuple[list[NamedFile], list[dict[str, str]]]:
    """(files, skipped): uploads with every .zip replaced by its images and annotation files, named by their path
    inside so annotations find their images, same names told apart ('a (2).png'). A zip that cannot be extracted
    safely is refused by name; its entries that cannot be extracted or are of another type are skipped."""
    return expand_archives(named, work_dir, (*IMAGE_SUFFIXES, *ANNOTATION_SUFFIXES), named_under_zip=False,
                           refuse_bad_zip=True)


def read_uploads(files: Sequence[NamedFile], work_dir: Path, format: str = "auto",
                 extra_images: Sequence[NamedFile] = (), source: str = "the upload") -> Dataset:
    """A set as a user uploads it: files and zips of images and annotations (plus `extra_images`, e.g. a
    video's frames), read with `read_dataset`; what could not be extracted is listed in `skipped`."""
    gathered, unextracted = gather_files(files, work_dir)
    gathered = [*gathered, *extra_images]
    if not gathered:  # saying why, when every file of the zips was skipped
        raise UserInputError("No images given: upload images (or a zip of them)"
                             + (", or a video." if source == "the video" else ".")
                             + Dataset([], [], skipped=unextracted).skipped_note())
    uploads = ", ".join(name for name, _ in files)
    dataset = read_dataset(gathered, format, source=f"the upload ({uploads})" if uploads else source)
    dataset.skipped[:0] = unextracted
    return dataset
