"""WinCLIP+ (few-normal-shot): memory math, the combination with zero-shot scores, caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.anomaly.scoring import association_scores
from engine.errors import UserInputError
from engine.media import load_image


def test_association_score_is_half_the_cosine_distance_to_the_nearest_reference():
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    embeddings = torch.tensor([[[2.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]])
    scores = association_scores(embeddings, memory)
    expected = torch.tensor([[0.0, (1 - 2**-0.5) / 2, 0.5]])  # same, 45 degrees off, orthogonal to both
    torch.testing.assert_close(scores, expected)


def test_memory_holds_every_patch_and_window_of_every_reference(tiny_pipeline, metal_plate_images):
    references = [load_image(p) for p in metal_plate_images[:3]]
    memory = tiny_pipeline.reference_memory(references)
    assert memory.count == 3
    assert memory.patches.shape[0] == 3 * 225
    assert [w.shape[0] for w in memory.windows] == [3 * 196, 3 * 169]


def test_memory_is_computed_once_per_reference_set(tiny_pipeline, metal_plate_images, monkeypatch):
    references = [load_image(p) for p in metal_plate_images[3:5]]
    first = tiny_pipeline.reference_memory(references)
    monkeypatch.setattr(tiny_pipeline, "_build_memory", lambda *a: pytest.fail("memory rebuilt"))
    assert tiny_pipeline.reference_memory([img.copy() for img in references]) is first


def test_a_reference_identical_to_the_test_image_halves_the_zero_shot_scores(tiny_pipeline, metal_plate_images):
    image = load_image(metal_plate_images[0])
    zero_shot = tiny_pipeline([image], "metal plate")[0]
    few_shot = tiny_pipeline([image], "metal plate", references=[image])[0]
    # nearest reference is the image itself: every few-shot distance is 0
    assert few_shot.score == pytest.approx(zero_shot.score / 2, abs=1e-5)
    np.testing.assert_allclose(few_shot.anomaly_map, zero_shot.anomaly_map / 2, atol=1e-5)


def test_a_different_test_image_gets_positive_few_shot_distances(tiny_pipeline, metal_plate_images):
    reference, test = load_image(metal_plate_images[0]), Image.new("RGB", (300, 300), (255, 0, 255))
    zero_shot = tiny_pipeline([test], "metal plate")[0]
    few_shot = tiny_pipeline([test], "metal plate", references=[reference])[0]
    assert few_shot.score > zero_shot.score / 2 + 1e-4
    assert few_shot.anomaly_map.shape == (300, 300)


def test_no_references_is_refused(tiny_pipeline):
    with pytest.raises(UserInputError, match="good part"):
        tiny_pipeline.reference_memory([])


def test_batched_memory_equals_one_by_one(tiny_pipeline, metal_plate_images):
    references = [load_image(p) for p in metal_plate_images[5:7]]
    with torch.inference_mode():
        one = tiny_pipeline._build_memory(references, batch_size=1)
        two = tiny_pipeline._build_memory(references, batch_size=2)
    torch.testing.assert_close(one.patches, two.patches, atol=1e-5, rtol=1e-4)
    for a, b in zip(one.windows, two.windows, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
