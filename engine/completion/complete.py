"""Job kind `completion`: propose the missing boxes of a partly annotated set (images, a video's frames, drawn
boxes) and write proposals.json, review previews and the completed set. Torch-free until `run`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import params as contract
from engine.errors import UserInputError
from engine.limits import max_proposals
from engine.models.saved import check_task
from engine.params import NamedFile, check_one, param, scratch
from engine.progress import ProgressCallback, ignore_progress, sub_progress

if TYPE_CHECKING:  # needs torch; the web process imports this module
    from engine.completion.pipeline import CompletionResult

DETECTOR_FOLDER_IN_A_JOB = ("detector: a folder on the server is not accepted in a job (it could be another user's); "
                            "name one of your saved detectors (or one shared with you, as user/name) in detector_model "
                            "instead.")
ONE_VIDEO = "Upload one video at a time (its sampled frames become the images)."
SELECTION = ("existing_iou", "nms_iou", "min_score", "max_per_image", "text_queries")
"""The parameters that decide which candidates become proposals, recorded in proposals.json."""


@dataclass(frozen=True)
class Params(contract.Params):
    preset: str = param("completion-owlv2-base", "OWLv2 completion preset that proposes the boxes", label="Model")
    detector: str = param("", "a fine-tuned detector's model folder (the model/ of `finetune detect`), used instead "
                              "of OWLv2", label="Detector folder")
    detector_model: str = param("", "a saved fine-tuned detector's name, used instead of OWLv2 (the worker finds "
                                    "its folder among the job owner's and the shared models)")
    format: str = param("auto", "annotation format of the upload", choices=("auto", "coco", "yolo", "voc"),
                        label="Annotation format")
    score_threshold: float = param(0.3, "score at or above which a proposal joins the completed set", ge=0, le=1,
                                   label="Score threshold")
    min_score: float = param(0.05, "lowest score kept in proposals.json (a review filters above it)", ge=0, le=1,
                             label="Lowest score kept")
    existing_iou: float = param(0.5, "proposals overlapping an annotation above this IoU are dropped", ge=0, le=1,
                                label="Overlap with an annotation (IoU)")
    nms_iou: float = param(0.3, "IoU of the class-wise non-maximum suppression", ge=0, le=1,
                           label="Overlap between proposals (NMS IoU)")
    max_per_image: int = param(100, "most proposals kept per image", ge=1, le=10_000, label="Most proposals per image")
    text_queries: bool = param(False, "also query each class by its name",
                               label="Also search by class name (text query)")
    video_stride: int = param(30, "keep every N-th frame of a video", ge=1, label="Keep every N-th frame")
    drawn_boxes: Any = param((), "boxes drawn in the UI: a list (or its JSON) of "  # noqa: RUF009 - read by drawn()
                                 "{\"image\", \"box\": [x, y, w, h], \"category\"}")
    device: str | None = param(None, "cpu, cuda, cuda:N or mps; default: the best available")

    def check(self) -> None:
        self.drawn()
        if self.text_queries and (self.detector or self.detector_model):
            raise UserInputError("Text queries are OWLv2's; a fine-tuned detector looks for its own classes. Untick "
                                 "'search by class name' or choose an OWLv2 model.")

    def presets(self) -> tuple[str, ...]:
        return () if self.detector or self.detector_model else (self.preset,)

    def saved_model(self) -> str | None:
        return self.detector_model or None  # OWLv2 without one

    def check_saved_model(self, meta: Mapping[str, Any], files: Mapping[str, Sequence[NamedFile]]) -> None:
        check_task(meta, "detect")

    def check_inputs(self, files: Mapping[str, Sequence[NamedFile]]) -> None:
        """A job (submit is the only caller) may not name a server folder: `detector` is the CLI's option. At most
        one video."""
        if self.detector:
            raise UserInputError(DETECTOR_FOLDER_IN_A_JOB)
        check_one(files.get("video", ()), ONE_VIDEO, optional=True)

    def drawn(self) -> list[dict[str, Any]]:
        """The drawn boxes as a list of dicts (they may arrive as JSON text from a form or the API)."""
        raw = self.drawn_boxes or []
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise UserInputError(f"drawn_boxes is not valid JSON ({exc.msg}).") from None
            except RecursionError:
                raise UserInputError("drawn_boxes is nested too deeply to be a list of boxes.") from None
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            raise UserInputError("drawn_boxes must be a list of {\"image\", \"box\": [x, y, w, h], \"category\"}.")
        return raw

    def check_budget(self, images: int) -> None:
        """Refuse, before any image is encoded, a set whose proposals could pass FEWSHOT_MAX_PROPOSALS."""
        if images * self.max_per_image > max_proposals():
            raise UserInputError(f"{images:,} images at max_per_image {self.max_per_image} could give "
                                 f"{images * self.max_per_image:,} proposals; at most {max_proposals():,} are accepted "
                                 "per job (FEWSHOT_MAX_PROPOSALS). Lower max_per_image, raise the video stride, or "
                                 "split the set.")

    def selection(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SELECTION}


@dataclass(frozen=True)
class Inputs(contract.Inputs):
    images: list[NamedFile]  # images and/or zips of them (with annotations inside, or not)
    annotations: list[NamedFile]  # COCO JSON, YOLO txt + classes.txt, VOC XML, or a zip of them
    video: list[NamedFile]  # at most one video, whose sampled frames become the images


@dataclass
class Result(contract.Result):
    preset: str
    random_weights: bool
    mode: str
    images: int
    existing_boxes: int
    exemplars: int
    proposals: int
    score_threshold: float
    proposals_above_threshold: int
    per_class_above_threshold: dict[str, int]
    categories: list[str]
    skipped: list[dict[str, str]]
    detector: str | None = None  # the fine-tuned detector's name, when one proposed the boxes
    notes: list[str] = field(default_factory=list)  # images used only in part (the first page of a TIFF)

    @classmethod
    def of(cls, completed: CompletionResult, summary: dict[str, Any], score_threshold: float,
           outputs: list[str]) -> Result:
        """The counts of a completion (not every box: those are in proposals.json) at the threshold."""
        dataset = completed.dataset
        above = [p for p in completed.all_proposals() if (p.box.score or 0) >= score_threshold]
        return cls(**summary, mode="complete", images=len(dataset.images), existing_boxes=dataset.box_count,
                   exemplars=len(completed.exemplars), proposals=len(completed.all_proposals()),
                   score_threshold=score_threshold, proposals_above_threshold=len(above),
                   per_class_above_threshold={c: sum(p.box.category == c for p in above) for c in dataset.categories},
                   categories=dataset.categories, skipped=dataset.skipped, notes=dataset.notes,
                   outputs=outputs)


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress) -> Result:
    """Import, propose the missing boxes, write proposals.json, previews and the completed set."""
    from engine.completion.inputs import prepare
    from engine.completion.outputs import write_outputs

    check_one(inputs.video, ONE_VIDEO, optional=True)
    with scratch(out_dir) as work_dir:
        pipeline, dataset, summary = prepare([*inputs.images, *inputs.annotations], work_dir, params,
                                             inputs.video[0] if inputs.video else None, progress)
        completed = pipeline(dataset, params, progress=sub_progress(progress, 0.08, 0.95))
        progress(0.96, "Writing proposals and exports")
        written = write_outputs(out_dir, completed, {**summary, "mode": "complete"}, params.score_threshold)
    return Result.of(completed, summary, params.score_threshold, written)
