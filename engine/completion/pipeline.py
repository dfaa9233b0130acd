"""Annotation completion: the annotated boxes of a set are exemplars; OWLv2 proposes the missing ones.

Two passes: the images that carry annotations give the exemplars (one query per annotated box,
pooled over the whole set, so boxes drawn on one image complete all the others); then every
image's predicted boxes are scored against all queries. A box's class is the class of its best
query (several exemplars of a class are combined by taking the best-matching one, which the
proposal records). Image features of the first pass are kept, within a memory budget, for the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.annotations.dataset import Box, Dataset, ImageRecord
from engine.completion.complete import Params
from engine.completion.logic import select_proposals, xywh_to_xyxy
from engine.completion.model import ImageFeatures, Owlv2Detector, to_pixels
from engine.device import select_device, select_dtype
from engine.errors import UserInputError
from engine.progress import ProgressCallback, ignore_progress, sub_progress


@dataclass
class Exemplar:
    """A query: an annotated box (or a class name), and the detector box whose embedding it uses."""

    id: int
    category: str
    kind: str  # "box" or "text"
    image: str | None = None
    box: list[float] | None = None  # the annotation, x, y, width, height
    matched_box: list[float] | None = None  # the detector's predicted box used for the embedding
    matched_iou: float | None = None


@dataclass
class Proposal:
    id: int
    image: str
    box: Box
    exemplar: int  # Exemplar.id of the query it matched best

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "box": [self.box.x, self.box.y, self.box.width, self.box.height],
                "category": self.box.category, "score": round(float(self.box.score or 0.0), 6),
                "exemplar": self.exemplar}


@dataclass
class CompletionResult:
    dataset: Dataset
    exemplars: list[Exemplar]
    proposals: dict[str, list[Proposal]] = field(default_factory=dict)
    params: Params = field(default_factory=Params)

    def all_proposals(self) -> list[Proposal]:
        return [p for image in self.dataset.images for p in self.proposals.get(image.file_name, [])]


def _xywh(xyxy: Sequence[float]) -> list[float]:
    x0, y0, x1, y1 = (round(float(v), 2) for v in xyxy)
    return [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)]


class CompletionPipeline:
    """Exemplar-conditioned completion on one device. Load once (`engine.loading.get_pipeline`)."""

    def __init__(self, detector: Owlv2Detector, feature_budget_mb: int = 1024) -> None:
        self.detector = detector
        self.feature_budget_bytes = feature_budget_mb * 2**20

    @classmethod
    def from_pretrained(cls, source: str | Path = "completion-owlv2-base", device: torch.device | str | None = None,
                        dtype: torch.dtype | None = None) -> CompletionPipeline:
        """Load from a completion preset name or an OWLv2 model directory."""
        device = select_device(str(device) if device is not None else None)
        return cls(Owlv2Detector.from_pretrained(source, device, dtype or select_dtype(device)))

    def _batches(self, images: Sequence[ImageRecord], batch_size: int):
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            pixels = [image.load() for image in batch]
            yield batch, self.detector.image_features(pixels)

    def exemplars(self, dataset: Dataset, batch_size: int, progress: ProgressCallback, cache: dict[str, ImageFeatures],
                  used: dict[str, set[int]]) -> tuple[list[Exemplar], list[torch.Tensor]]:
        """One query per annotated box, from the detector box that overlaps it best (recorded in `used`:
        that box stands for the annotation and is never proposed)."""
        sources = [image for image in dataset.images if image.boxes]
        exemplars: list[Exemplar] = []
        embeddings: list[torch.Tensor] = []
        cached_bytes = 0
        done = 0
        for batch, features in self._batches(sources, batch_size):
            for image, feats in zip(batch, features, strict=True):
                for box in image.boxes:
                    embedding, index, overlap = self.detector.exemplar(feats, np.asarray(box.xyxy))
                    exemplars.append(Exemplar(len(exemplars), box.category, "box", image.file_name,
                                              [box.x, box.y, box.width, box.height],
                                              _xywh(to_pixels(feats.boxes[index], feats.side)), round(overlap, 4)))
                    embeddings.append(embedding)
                    used.setdefault(image.file_name, set()).add(index)
                size = feats.feats.numel() * feats.feats.element_size()
                if cached_bytes + size <= self.feature_budget_bytes:
                    cache[image.file_name], cached_bytes = feats, cached_bytes + size
            done += len(batch)
            progress(done / len(sources), f"Exemplars from {done} of {len(sources)} annotated images")
        return exemplars, embeddings

    def propose(self, image: ImageRecord, features: ImageFeatures, scores: np.ndarray, query_class: list[str],
                params: Params, exclude: set[int] = frozenset()) -> list[tuple[Box, int]]:
        """Proposals (box with score, index of the matched query) of one image from its per-query scores."""
        best_query = scores.argmax(axis=1)
        best_score = scores[np.arange(len(scores)), best_query]
        pixels = to_pixels(features.boxes, features.side)
        pixels[:, [0, 2]] = pixels[:, [0, 2]].clip(0, image.width)
        pixels[:, [1, 3]] = pixels[:, [1, 3]].clip(0, image.height)
        inside = ((pixels[:, 2] - pixels[:, 0]) >= 1) & ((pixels[:, 3] - pixels[:, 1]) >= 1)  # not in the padding
        inside[list(exclude)] = False
        candidates = np.flatnonzero(inside)
        labels = [query_class[q] for q in best_query[candidates]]
        existing = xywh_to_xyxy([[b.x, b.y, b.width, b.height] for b in image.boxes])
        kept = select_proposals(pixels[candidates], best_score[candidates], labels, existing, params.existing_iou,
                                params.nms_iou, params.min_score, params.max_per_image)
        proposals = []
        for k in kept:
            x, y, w, h = _xywh(pixels[candidates[k]])
            proposals.append((Box(x, y, w, h, labels[k], round(float(best_score[candidates[k]]), 6)),
                              int(best_query[candidates[k]])))
        return proposals

    def __call__(self, dataset: Dataset, params: Params | None = None, batch_size: int | None = None,
                 progress: ProgressCallback = ignore_progress) -> CompletionResult:
        """Propose the missing boxes of every image; `progress` may raise to cancel."""
        params = params or Params()
        params.check_budget(len(dataset.images))
        if not dataset.box_count and not (params.text_queries and dataset.categories):
            raise UserInputError("No annotated boxes to learn from: import annotations or draw a few boxes around "
                                 "examples of each object to find." + dataset.skipped_note())
        batch_size = batch_size or (4 if self.detector.device.type == "cuda" else 1)
        cache: dict[str, ImageFeatures] = {}
        used: dict[str, set[int]] = {}
        progress(0.0, "Encoding the exemplars")
        exemplars, embeddings = self.exemplars(dataset, batch_size, sub_progress(progress, 0.0, 0.3), cache, used)
        if params.text_queries:
            classes = dataset.categories
            for name, embedding in zip(classes, self.detector.text_queries(classes), strict=True):
                exemplars.append(Exemplar(len(exemplars), name, "text"))
                embeddings.append(embedding)
        queries = torch.stack(embeddings)
        query_class = [e.category for e in exemplars]
        result = CompletionResult(dataset, exemplars, params=params)

        def complete(image: ImageRecord, feats: ImageFeatures) -> None:
            self._complete_one(result, image, feats, queries, query_class, used.get(image.file_name, set()))

        step = sub_progress(progress, 0.3 if dataset.box_count else 0.0, 1.0)
        pending = [image for image in dataset.images if image.file_name not in cache]
        done = 0
        for image in dataset.images:
            if image.file_name in cache:
                complete(image, cache.pop(image.file_name))
                done += 1
                step(done / len(dataset.images), f"Completed {done} of {len(dataset.images)} images")
        for batch, features in self._batches(pending, batch_size):
            for image, feats in zip(batch, features, strict=True):
                complete(image, feats)
            done += len(batch)
            step(done / len(dataset.images), f"Completed {done} of {len(dataset.images)} images")
        for number, proposal in enumerate(result.all_proposals()):
            proposal.id = number  # numbered in the order of the images, whichever pass computed them
        return result

    def _complete_one(self, result: CompletionResult, image: ImageRecord, features: ImageFeatures,
                      queries: torch.Tensor, query_class: list[str], exclude: set[int]) -> None:
        scores = self.detector.scores(features, queries)
        result.proposals[image.file_name] = [
            Proposal(-1, image.file_name, box, query)
            for box, query in self.propose(image, features, scores, query_class, result.params, exclude)
        ]
