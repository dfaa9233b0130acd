"""From what a user hands over to a dataset: uploaded files and zips, a video's sampled frames, drawn boxes;
and the model that proposes the boxes, chosen by the parameters.

Zips are extracted safely into a scratch folder (engine.archives); video frames are decoded by
engine.video and written there as PNGs named by frame index and time; uploads are never modified.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.annotations.dataset import Box, BoxBudget, Dataset, ImageRecord, checked_box
from engine.annotations.read import read_uploads
from engine.completion.complete import Params
from engine.errors import UserInputError
from engine.limits import class_name_problem, finite_number, max_boxes_per_image, max_classes, quoted
from engine.params import NamedFile
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress, sub_progress


def frame_file_name(index: int, time_s: float) -> str:
    """How a sampled video frame is named in the set, e.g. frame_000120_4.00s.png."""
    return f"frame_{index:06d}_{time_s:.2f}s.png"


def video_frames(name: str, path: Path, stride: int | None, work_dir: Path,
                 progress: ProgressCallback = ignore_progress) -> list[tuple[str, Path]]:
    """Every `stride`-th frame of a video as a PNG in `work_dir`, named by frame index and time.

    The frames are bounded by FEWSHOT_MAX_VIDEO_FRAMES like every tool's (engine.video checks the stride,
    the metadata and the decoding itself); the proposals they may give, by FEWSHOT_MAX_PROPOSALS.
    """
    from engine.video import iter_frames, probe_video, sampled_frame_count

    info = probe_video(path, name)
    expected = sampled_frame_count(info, stride=stride)
    folder = work_dir / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for frame in iter_frames(path, stride=stride, display_name=name, info=info):
        target = folder / frame_file_name(frame.index, frame.time_s)
        frame.image.save(target, compress_level=1)
        files.append((target.name, target))
        progress(min(len(files) / max(expected, 1), 1.0), f"Sampled {len(files)} frames of {name}")
    return files


def _drawn_box(item: dict[str, Any], by_name: dict[str, ImageRecord], categories: list[str]) -> Box | str:
    """One drawn box as a box, or why it is not one (the same limits as imported annotations)."""
    image = by_name.get(str(item.get("image", "")))
    if image is None:
        return f"the image {quoted(item.get('image'))} is not in the set"
    category = re.sub(r"\s+", " ", str(item.get("category") or "")).strip()
    problem = class_name_problem(category)
    if problem:
        return problem
    if category not in categories and len(categories) >= max_classes():
        return (f"its class {quoted(category)} would be class {len(categories) + 1:,}; at most {max_classes():,} "
                "are accepted in one set (FEWSHOT_MAX_CLASSES)")
    if len(image.boxes) >= max_boxes_per_image():
        return (f"{image.file_name} has {len(image.boxes):,} boxes already; at most {max_boxes_per_image():,} are "
                "accepted per image (FEWSHOT_MAX_BOXES_PER_IMAGE)")
    box = item.get("box")
    if not (isinstance(box, list | tuple) and len(box) == 4):
        return f"the box must be [x, y, width, height], not {quoted(box)}"
    try:
        values = [finite_number(value, f"box value {place}") for place, value in enumerate(box, start=1)]
    except UserInputError as exc:
        return str(exc).removesuffix(".")
    return checked_box(*values, category, image)


def add_drawn_boxes(dataset: Dataset, drawn: Sequence[dict[str, Any]]) -> None:
    """Add boxes drawn in the UI: [{"image": file name, "box": [x, y, w, h], "category": name}].

    A box on an unknown image, outside its image, with a value that is not a finite number, a bad class
    name, or past the class or per-image limits is skipped with the reason. Drawn boxes count towards
    FEWSHOT_MAX_BOXES with the imported ones, valid or not, so a hostile list ends the job by name
    instead of growing the set (and its skipped list) without bound.
    """
    by_name = {image.file_name: image for image in dataset.images}
    budget = BoxBudget()
    budget.take("the imported annotations", dataset.box_count)
    for number, item in enumerate(drawn, start=1):
        where = f"drawn box {number}"
        budget.take(where)
        checked = _drawn_box(item, by_name, dataset.categories)
        if isinstance(checked, str):
            dataset.skipped.append({"file": "drawn boxes", "error": f"{where}: {checked}."})
            continue
        by_name[str(item["image"])].boxes.append(checked)
        if checked.category not in dataset.categories:
            dataset.categories.append(checked.category)


def load_dataset(files: Sequence[tuple[str, Path]], work_dir: Path, format: str = "auto",
                 video: tuple[str, Path] | None = None, stride: int | None = None,
                 drawn: Sequence[dict[str, Any]] = (), progress: ProgressCallback = ignore_progress) -> Dataset:
    """The whole import: files and zips, then a video's frames, then drawn boxes."""
    frames = video_frames(*video, stride, work_dir, progress) if video is not None else []
    dataset = read_uploads(files, work_dir, format, extra_images=frames, source="the video")
    add_drawn_boxes(dataset, drawn)
    return dataset


def proposer(params: Params) -> tuple[dict[str, Any], str, Callable[[], Any]]:
    """(what proposes the boxes, for the record; its label; its loader): a fine-tuned detector when
    `params.detector` names its folder, else the OWLv2 preset; checked before any file is read."""
    if params.detector:
        from engine.models.saved import read_meta

        directory = Path(params.detector)
        meta = read_meta(directory, "detect")
        base = get_preset(meta["base_preset"])

        def load_detector():
            from engine.completion.finetuned import DetectorCompletion

            return DetectorCompletion.from_model_dir(directory, params.device)

        return ({"detector": meta["name"], "preset": base.name, "random_weights": base.random_weights},
                f"fine-tuned detector {meta['name']}", load_detector)
    preset = get_preset(params.preset)
    if preset.tool != "completion":
        raise UserInputError(f"Preset {preset.name!r} is not an annotation-completion model.")

    def load_owlv2():
        from engine.completion.pipeline import CompletionPipeline
        from engine.loading import get_pipeline

        return get_pipeline(CompletionPipeline, preset.name, params.device)

    return {"preset": preset.name, "random_weights": preset.random_weights}, f"model {preset.label}", load_owlv2


def prepare(files: list[NamedFile], work_dir: Path, params: Params, video: NamedFile | None,
            progress: ProgressCallback):
    """(the proposer, loaded; the set read from the files; what proposes, for the record)."""
    summary, label, load = proposer(params)
    progress(0.0, "Reading the images and annotations")
    dataset = load_dataset(files, work_dir, params.format, video, params.video_stride, params.drawn(),
                           sub_progress(progress, 0.0, 0.05))
    progress(0.05, f"Loading {label}")
    return load(), dataset, summary
