"""The `finetune_predict` job: use a saved model, a classifier on images or a video's frames (at a WiSE-FT mix),
or a detector on images (boxes at or above a score). Torch-free until `run`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.errors import UserInputError
from engine.models.saved import task_of
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile, param, scratch
from engine.params import Params as BaseParams
from engine.params import Result as BaseResult
from engine.progress import ProgressCallback, ignore_progress, sub_progress
from engine.tables import write_csv

CLASSIFIER_PREDICTIONS_FILE = "predictions.json"
BOX_COLUMNS = ["file", "class", "score", "x", "y", "width", "height"]


@dataclasses.dataclass(frozen=True)
class Params(BaseParams):
    model: str = param("", "the saved model: a name (yours, or another user's shared one as user/name); from the "
                           "CLI, a model folder")
    alpha: float = param(1.0, "classifier: WiSE-FT mix, 0 zero-shot, 1 fine-tuned", ge=0.0, le=1.0,
                         label="Classifier: WiSE-FT mix (0 zero-shot, 1 fine-tuned)")
    stride: int = param(10, "classifier on a video: every N-th frame", ge=1, label="Video: every Nth frame")
    fps: float | None = param(None, "classifier on a video: about this many frames a second, instead of a stride",
                              ge=0.001, label="Video: frames per second")
    score_threshold: float = param(0.5, "detector: lowest box score", ge=0.0, le=1.0,
                                   label="Detector: lowest box score")

    def saved_model(self) -> str | None:
        return self.model  # needed: "" is refused at submit as no such model

    def check_saved_model(self, meta: Mapping[str, Any], files: Mapping[str, Sequence[NamedFile]]) -> None:
        check_video_for(meta, self.model, bool(files.get("video")))


def check_video_for(meta: Mapping[str, Any], model: str, video: bool) -> None:
    """A detector reads images only: a video given to one is refused (a classifier reads its frames)."""
    if video and task_of(meta) == "detect":
        raise UserInputError(f"'{model}' is a detector: give it images (or a zip of images), not a video.")


@dataclasses.dataclass(frozen=True)
class Inputs(BaseInputs):
    """Images or zips of images; or, for a classifier, one video."""

    images: list[NamedFile]
    video: list[NamedFile] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Result(BaseResult):
    """One row per image (or frame); `task` says which kind of model made them: "classify" rows have a class and
    its probability, "detect" rows the boxes and the drawn image. `notes`: images used only in part (the first
    page of a TIFF)."""

    task: str
    model: str
    classes: list[str]
    predictions: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    alpha: float | None = None
    score_threshold: float | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def table(result: Result) -> tuple[list[str], list[list[Any]]]:
    """The predictions as a spreadsheet reads them: (header, rows). A classifier: file (and time in a video),
    class, its probability, then one probability column per class; a detector: one row per box, and a row with
    only the file for an image without boxes (so every image is accounted for)."""
    if result.task == "detect":
        rows: list[list[Any]] = []
        for prediction in result.predictions:
            rows += [[prediction["file"], box["category"], box["score"], *box["box"]] for box in prediction["boxes"]]
            if not prediction["boxes"]:
                rows.append([prediction["file"], *[""] * (len(BOX_COLUMNS) - 1)])
        return BOX_COLUMNS, rows
    timed = any("time_s" in p for p in result.predictions)
    header = ["file", *(["time_s"] if timed else []), "class", "probability",
              *(f"probability {name}" for name in result.classes)]
    rows = [[p["file"], *([p.get("time_s", "")] if timed else []), p["class"], round(p["probability"], 6),
             *(round(p["probabilities"][name], 6) for name in result.classes)] for p in result.predictions]
    return header, rows


def save(result: Result, out_dir: Path, json_name: str) -> Result:
    """Write the predictions as `json_name` (the whole result) and as a CSV table of the same stem; both go
    first in the result's outputs, before the pictures already there."""
    csv_name = Path(json_name).with_suffix(".csv").name
    result.outputs = [json_name, csv_name, *result.outputs]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / json_name).write_text(json.dumps(result.to_json(), indent=1))
    header, rows = table(result)
    write_csv(out_dir / csv_name, header, rows)
    return result


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress,
        model_dir: Path | None = None, device: str | None = None) -> Result:
    """Predictions of the model in `model_dir` (a job's worker finds it by name in its owner's models),
    by default the folder `params.model`."""
    from engine.archives import expand_archives
    from engine.filetypes import IMAGE_SUFFIXES
    from engine.models.saved import read_meta

    model_dir = model_dir or Path(params.model)
    meta = read_meta(model_dir)
    check_video_for(meta, params.model, bool(inputs.video))
    with scratch(out_dir) as work:
        files, skipped = expand_archives(inputs.images, work, IMAGE_SUFFIXES)
        if task_of(meta) == "detect":
            from engine.finetune.detect.runs import predict_files

            progress(0.05, f"Loading detector {params.model}")
            return predict_files(model_dir, files, out_dir, params.score_threshold, device, skipped=skipped,
                                 progress=sub_progress(progress, 0.1, 0.99))
        from engine.finetune.classify.runs import Predictor, predict_video
        from engine.media import load_images

        progress(0.05, f"Loading model {params.model}")
        predictor = Predictor(model_dir, params.alpha, device, thumbnails=out_dir)
        notes: list[str] = []
        if inputs.video:
            rows = predict_video(predictor, inputs.video[0], None if params.fps else params.stride, params.fps)
        else:
            names, images, skipped = load_images(files, skipped=skipped, notes=notes)
            rows = predictor(names, images)
    result = Result("classify", params.model, meta["classes"], rows, skipped, alpha=params.alpha,
                    outputs=predictor.written, notes=notes)
    return save(result, out_dir, CLASSIFIER_PREDICTIONS_FILE)
