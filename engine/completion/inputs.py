"""From what a user hands over to a dataset: uploaded files and zips, a video's sampled frames, drawn boxes.

Zips are extracted safely into a scratch folder (engine.archives); video frames are decoded by
engine.video and written there as PNGs named by frame index and time; uploads are never modified.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.archives import extract_zip
from engine.completion.formats import Dataset, checked_box, read_dataset
from engine.errors import UserInputError
from engine.naming import distinct_names
from engine.progress import ProgressCallback, ignore_progress

MAX_VIDEO_FRAMES = 2000
MAX_CLASS_NAME_CHARS = 60


def gather_files(named: Sequence[tuple[str, Path]], work_dir: Path,
                 skipped: list[dict[str, str]] | None = None) -> list[tuple[str, Path]]:
    """Uploaded files with every .zip replaced by its contents (names relative to the archive root, so
    annotations find their images), same names told apart ('a (2).png'); zip entries that cannot be
    extracted go to `skipped` (refused by name without it)."""
    files = []
    for position, (name, path) in enumerate(named):
        if name.lower().endswith(".zip"):
            root = extract_zip(path, work_dir / f"zip{position:03d}", display_name=name, skipped=skipped)
            files += [(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*")) if p.is_file()]
        else:
            files.append((name, path))
    return list(zip(distinct_names(name for name, _ in files), (path for _, path in files), strict=True))


def frame_file_name(index: int, time_s: float) -> str:
    """How a sampled video frame is named in the set, e.g. frame_000120_4.00s.png."""
    return f"frame_{index:06d}_{time_s:.2f}s.png"


def video_frames(name: str, path: Path, stride: int, work_dir: Path,
                 progress: ProgressCallback = ignore_progress) -> list[tuple[str, Path]]:
    """Every `stride`-th frame of a video as a PNG in `work_dir`, named by frame index and time."""
    from engine.video import iter_frames, probe_video, sampled_frame_count

    if stride < 1:
        raise UserInputError(f"The frame stride must be 1 or more, not {stride}.")
    expected = sampled_frame_count(probe_video(path, name), stride=stride)
    if expected > MAX_VIDEO_FRAMES:
        raise UserInputError(f"{name}: a stride of {stride} samples about {expected} frames; at most "
                             f"{MAX_VIDEO_FRAMES} are accepted. Raise the stride.")
    folder = work_dir / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for frame in iter_frames(path, stride=stride, display_name=name):
        target = folder / frame_file_name(frame.index, frame.time_s)
        frame.image.save(target, compress_level=1)
        files.append((target.name, target))
        progress(min(len(files) / max(expected, 1), 1.0), f"Sampled {len(files)} frames of {name}")
    return files


def add_drawn_boxes(dataset: Dataset, drawn: Sequence[dict[str, Any]]) -> None:
    """Add boxes drawn in the UI: [{"image": file name, "box": [x, y, w, h], "category": name}].

    A box on an unknown image, outside its image or with a bad class name is skipped with the reason.
    """
    by_name = {image.file_name: image for image in dataset.images}
    for number, item in enumerate(drawn, start=1):
        where = f"drawn box {number}"
        image = by_name.get(str(item.get("image", "")))
        category = re.sub(r"\s+", " ", str(item.get("category") or "")).strip()
        box = item.get("box")
        if image is None:
            problem = f"the image {item.get('image')!r} is not in the set"
        elif not category or len(category) > MAX_CLASS_NAME_CHARS:
            problem = f"the class name must have 1 to {MAX_CLASS_NAME_CHARS} characters"
        elif not (isinstance(box, list | tuple) and len(box) == 4 and all(isinstance(v, int | float) for v in box)):
            problem = f"the box must be [x, y, width, height], not {box!r}"
        else:
            checked = checked_box(*box, category, image)
            if not isinstance(checked, str):
                image.boxes.append(checked)
                if category not in dataset.categories:
                    dataset.categories.append(category)
                continue
            problem = checked
        dataset.skipped.append({"file": "drawn boxes", "error": f"{where}: {problem}."})


def load_dataset(files: Sequence[tuple[str, Path]], work_dir: Path, format: str = "auto",
                 video: tuple[str, Path] | None = None, stride: int = 30,
                 drawn: Sequence[dict[str, Any]] = (), progress: ProgressCallback = ignore_progress) -> Dataset:
    """The whole import: files and zips, then a video's frames, then drawn boxes."""
    unextracted: list[dict[str, str]] = []
    gathered = gather_files(files, work_dir, unextracted)
    if video is not None:
        gathered += video_frames(*video, stride, work_dir, progress)
    if not gathered:
        raise UserInputError("No images given: upload images (or a zip of them), or a video.")
    uploads = ", ".join(name for name, _ in files)
    dataset = read_dataset(gathered, format, source=f"the upload ({uploads})" if uploads else "the video")
    dataset.skipped[:0] = unextracted
    add_drawn_boxes(dataset, drawn)
    return dataset
