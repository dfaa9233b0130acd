"""OWLv2 loading (tiny preset saved and loaded by path), exemplar choice, square padding, the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.annotations.dataset import Box, Dataset, ImageRecord
from engine.annotations.read import read_dataset
from engine.completion.complete import Params
from engine.completion.logic import iou_matrix
from engine.completion.model import Owlv2Detector, best_box_index, build_random_owlv2, is_owlv2_dir, save_owlv2
from engine.completion.pipeline import CompletionPipeline
from engine.errors import WeightsNotFoundError
from engine.loading import get_pipeline, models_dir
from engine.presets import get_preset, presets_for


@pytest.fixture(scope="module")
def pipeline() -> CompletionPipeline:
    return get_pipeline(CompletionPipeline, "completion-tiny")


def test_exemplar_is_the_predicted_box_with_the_best_iou_not_the_biggest_overlap():
    target = np.array([0.2, 0.2, 0.4, 0.4])
    predicted = np.array([
        [0.0, 0.0, 1.0, 1.0],  # contains the target (largest intersection), IoU 0.04
        [0.25, 0.25, 0.35, 0.35],  # same centre, inside it, IoU 0.25
        [0.22, 0.2, 0.42, 0.4],  # shifted a little: IoU 0.818, the right one
        [0.6, 0.6, 0.8, 0.8],  # elsewhere
    ])
    index, overlap = best_box_index(predicted, target)
    assert index == 2 and overlap == pytest.approx(0.036 / 0.044)


def test_tiny_model_saved_to_a_directory_loads_through_the_real_path(tmp_path):
    model, processor = build_random_owlv2(get_preset("completion-tiny").config, seed=5)
    save_owlv2(model, processor, tmp_path / "owl")
    assert is_owlv2_dir(tmp_path / "owl")
    loaded = Owlv2Detector.from_pretrained(tmp_path / "owl", torch.device("cpu"), torch.float32)
    original = Owlv2Detector(model, processor, "in memory")
    image = Image.effect_noise((96, 64), 40).convert("RGB")
    a, b = loaded.image_features([image])[0], original.image_features([image])[0]
    torch.testing.assert_close(a.class_embeds, b.class_embeds)
    np.testing.assert_allclose(a.boxes, b.boxes)
    torch.testing.assert_close(loaded.text_queries(["bolt"]), original.text_queries(["bolt"]))


def test_the_preset_is_built_once_into_the_models_dir_and_cached(pipeline):
    assert is_owlv2_dir(models_dir() / "completion-tiny")
    assert get_pipeline(CompletionPipeline, "completion-tiny") is pipeline
    assert [p.name for p in presets_for("completion")] == ["completion-owlv2-base", "completion-tiny"]


def test_missing_real_weights_say_how_to_get_them():
    with pytest.raises(WeightsNotFoundError, match=r"completion-owlv2-base.*google/owlv2-base-patch16-ensemble.*"
                                                   "make weights"):
        CompletionPipeline.from_pretrained("completion-owlv2-base", device="cpu")


def test_boxes_map_back_through_the_square_padding(pipeline):
    """A 150 x 100 image is padded to 150 x 150: normalised y is a fraction of 150, not of 100."""
    detector = pipeline.detector
    features = detector.image_features([Image.effect_noise((150, 100), 30).convert("RGB")])[0]
    assert features.side == 150
    k = 37
    annotated = features.boxes[k] * 150  # the detector's own box k, in pixels
    embedding, index, overlap = detector.exemplar(features, annotated)
    assert (index, overlap) == (k, pytest.approx(1.0))
    torch.testing.assert_close(embedding, features.class_embeds[k])
    wrong, *_ = detector.exemplar(features, features.boxes[k] * np.array([150, 100, 150, 100]))
    assert not torch.equal(wrong, embedding)  # scaling y by the height picks another box


def test_completion_on_deeppcb_images_follows_the_rules(pipeline, shared_data):
    root = shared_data / "detection" / "deeppcb" / "images"
    dataset = read_dataset([(p.name, p) for p in sorted(root.glob("*.png"))[:3]])
    first = dataset.images[0]
    features = pipeline.detector.image_features([Image.open(first.path).convert("RGB")])[0]
    k = 100
    x0, y0, x1, y1 = (features.boxes[k] * features.side).round(2)
    first.boxes.append(Box(x0, y0, x1 - x0, y1 - y0, "open"))
    first.boxes.append(Box(300, 300, 40, 40, "short"))
    dataset.categories = ["open", "short"]
    params = Params(existing_iou=0.4, nms_iou=0.3, min_score=0.0, max_per_image=50)
    reports = []
    result = pipeline(dataset, params, progress=lambda f, m: reports.append(f))
    assert reports[-1] == 1.0 and reports == sorted(reports)
    assert [e.category for e in result.exemplars] == ["open", "short"]
    assert result.exemplars[0].matched_iou == pytest.approx(1.0, abs=1e-3)
    assert [p.id for p in result.all_proposals()] == list(range(len(result.all_proposals())))
    for image in dataset.images:
        proposals = result.proposals[image.file_name]
        assert 0 < len(proposals) <= 50
        boxes = np.array([p.box.xyxy for p in proposals])
        assert (boxes[:, 2] <= image.width).all() and (boxes[:, 3] <= image.height).all()  # none in the padding
        scores = [p.box.score for p in proposals]
        assert scores == sorted(scores, reverse=True)
        for p in proposals:
            assert result.exemplars[p.exemplar].category == p.box.category
        if image.boxes:
            existing = np.array([b.xyxy for b in image.boxes])
            assert iou_matrix(boxes, existing).max() <= 0.4
        for category in ("open", "short"):
            same = boxes[[p.box.category == category for p in proposals]]
            overlaps = iou_matrix(same, same) - np.eye(len(same))
            assert (overlaps <= 0.3 + 1e-9).all()


def test_text_queries_add_one_query_per_class(pipeline):
    image = ImageRecord("a.png", 64, 64, [Box(0, 0, 16, 16, "bolt")])
    image.path = None
    dataset = Dataset([image], ["bolt", "nut"])
    with pytest.raises(Exception, match="no pixels"):
        pipeline(dataset, Params(text_queries=True))
    embeddings = pipeline.detector.text_queries(["bolt", "nut"])
    assert embeddings.shape == (2, 64) and not torch.allclose(embeddings[0], embeddings[1])
