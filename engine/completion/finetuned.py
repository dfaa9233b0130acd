"""Annotation completion with a fine-tuned detector instead of OWLv2 exemplars: the loop closes.

Complete a set, review it, fine-tune a detector on the reviewed set (few-shot fine-tuning tab), and
complete the next set with that detector. Proposals are the detector's boxes for the set's classes,
matched by name ignoring case (a set with no classes yet gets all of the detector's), filtered by the
same rules as OWLv2's (overlap with existing annotations, class-wise NMS, minimum score, at most N per
image), so review, export and evaluation work exactly as with OWLv2. Each class of the detector stands
as one "detector" exemplar, so every proposal still names the query it came from.
"""

from __future__ import annotations

from pathlib import Path

from engine.annotations.dataset import Box, Dataset
from engine.completion.complete import Params
from engine.completion.logic import select_proposals, xywh_to_xyxy
from engine.completion.pipeline import CompletionResult, Exemplar, Proposal
from engine.errors import UserInputError
from engine.models.rtdetr import DetectionPredictor
from engine.progress import ProgressCallback, ignore_progress


class DetectorCompletion:
    """A saved detector as the completion tool's engine; called like `CompletionPipeline`."""

    def __init__(self, predictor: DetectionPredictor) -> None:
        self.predictor = predictor

    @classmethod
    def from_model_dir(cls, model_dir: Path, device: str | None = None) -> DetectorCompletion:
        return cls(DetectionPredictor(model_dir, device))

    @property
    def name(self) -> str:
        return self.predictor.meta["name"]

    def class_map(self, dataset: Dataset) -> dict[str, str]:
        """{detector class: the set's spelling of it}; a set without classes takes the detector's."""
        if not dataset.categories:
            dataset.categories.extend(self.predictor.classes)
        spelled = {name.casefold(): name for name in dataset.categories}
        mapping = {name: spelled[name.casefold()] for name in self.predictor.classes if name.casefold() in spelled}
        if not mapping:
            raise UserInputError(f"Detector '{self.name}' finds {', '.join(self.predictor.classes)}; the set's classes "
                                 f"are {', '.join(dataset.categories)}: none match. Pick a detector trained on these "
                                 "classes, or OWLv2.")
        return mapping

    def __call__(self, dataset: Dataset, params: Params | None = None, batch_size: int | None = None,
                 progress: ProgressCallback = ignore_progress) -> CompletionResult:
        """Propose the missing boxes of every image; `progress` may raise to cancel."""
        params = params or Params()
        params.check_budget(len(dataset.images))
        mapping = self.class_map(dataset)
        exemplars = [Exemplar(number, name, "detector") for number, name in enumerate(mapping.values())]
        query = {e.category: e.id for e in exemplars}
        result = CompletionResult(dataset, exemplars, params=params)
        batch_size = batch_size or 8
        for start in range(0, len(dataset.images), batch_size):
            batch = dataset.images[start:start + batch_size]
            for image, found in zip(batch, self.predictor([image.load() for image in batch], params.min_score),
                                    strict=True):
                boxes = [Box(round(b.x, 2), round(b.y, 2), round(b.width, 2), round(b.height, 2),
                             mapping[b.category], round(b.score or 0.0, 6)) for b in found if b.category in mapping]
                existing = xywh_to_xyxy([[b.x, b.y, b.width, b.height] for b in image.boxes])
                kept = select_proposals(xywh_to_xyxy([[b.x, b.y, b.width, b.height] for b in boxes]),
                                        [b.score for b in boxes], [b.category for b in boxes], existing,
                                        params.existing_iou, params.nms_iou, params.min_score, params.max_per_image)
                result.proposals[image.file_name] = [Proposal(-1, image.file_name, boxes[k], query[boxes[k].category])
                                                     for k in kept]
            done = min(start + batch_size, len(dataset.images))
            progress(done / len(dataset.images), f"Completed {done} of {len(dataset.images)} images")
        for number, proposal in enumerate(result.all_proposals()):
            proposal.id = number
        return result
