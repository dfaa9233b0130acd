"""Thresholds: leave-one-out memory math, the calibration rule, user values, verdicts, outlines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.anomaly.common import AnomalyParams
from engine.anomaly.inspection import resolve_threshold
from engine.anomaly.pipeline import ReferenceMemory
from engine.anomaly.thresholds import set_threshold, user_threshold
from engine.errors import UserInputError
from engine.media import load_image
from engine.visualize import inspection_overlay, region_outline
from tests.conftest import calibrated


def _memory(count: int) -> ReferenceMemory:
    """Reference r's rows are all filled with r, so every slice shows where it came from."""
    patches = torch.cat([torch.full((4, 3), float(r)) for r in range(count)])
    windows = [torch.cat([torch.full((n, 2), float(r)) for r in range(count)]) for n in (3, 2)]
    return ReferenceMemory(patches, windows, count, torch.arange(count, dtype=torch.float32)[:, None].repeat(1, 2))


def test_leaving_one_reference_out_removes_exactly_its_rows():
    memory = _memory(3).without(1)
    assert memory.count == 2
    assert memory.patches[:, 0].tolist() == [0.0] * 4 + [2.0] * 4
    assert [w[:, 0].tolist() for w in memory.windows] == [[0.0] * 3 + [2.0] * 3, [0.0] * 2 + [2.0] * 2]
    assert memory.images[:, 0].tolist() == [0.0, 2.0]


def test_a_reference_read_back_as_a_test_image():
    embeddings = _memory(3).embeddings_of(2)
    assert embeddings.patches.shape == (1, 4, 3) and bool((embeddings.patches == 2).all())
    assert [tuple(w.shape) for w in embeddings.windows] == [(1, 3, 2), (1, 2, 2)]
    assert embeddings.image.tolist() == [[2.0, 2.0]]


def test_calibration_scores_each_good_image_against_the_others(tiny_pipeline, tiny_scorer, metal_plate_images):
    goods = [load_image(p) for p in metal_plate_images[:3]]
    threshold = calibrated(tiny_scorer, "metal plate", goods)
    # The same leave-one-out scores through the public call, one good image at a time.
    expected_scores, expected_pixel = [], []
    for index, image in enumerate(goods):
        others = goods[:index] + goods[index + 1 :]
        result = tiny_pipeline([image], "metal plate", references=others)[0]
        expected_scores.append(result.score)
        expected_pixel.append(result.anomaly_map.max())
    np.testing.assert_allclose(threshold.good_scores, expected_scores, atol=1e-5)
    scores = np.array(expected_scores)
    assert threshold.image == pytest.approx(max(scores.max(), scores.mean() + 3 * scores.std(ddof=1)), abs=1e-5)
    # From the patch grid: upsampling to the image never exceeds it, so no good pixel is outlined.
    assert max(expected_pixel) <= threshold.pixel + 1e-6
    assert threshold.pixel == pytest.approx(max(expected_pixel), abs=2e-3)
    assert threshold.source == "calibrated" and "leave one out" in threshold.rule
    assert all(threshold.verdict(s) == "OK" for s in expected_scores)


def test_calibration_needs_two_good_images(tiny_scorer, metal_plate_images):
    with pytest.raises(UserInputError, match="at least 2 images of good parts"):
        calibrated(tiny_scorer, "metal plate", [load_image(metal_plate_images[0])])
    with pytest.raises(UserInputError, match="at least 2 images of good parts"):
        calibrated(tiny_scorer, "metal plate", [])


def test_auto_calibrates_with_two_references_and_falls_back_to_the_default(tiny_scorer, metal_plate_images):
    for references, source in (([], "default"), (metal_plate_images[:1], "default"),
                               (metal_plate_images[:2], "calibrated")):
        tiny_scorer.prepare(AnomalyParams(object_name="metal plate"), [load_image(p) for p in references])
        assert resolve_threshold(tiny_scorer, "auto", set_scores=[0.1, 0.2, 0.3, 0.9]).source == source
    assert resolve_threshold(tiny_scorer, 0.7).image == 0.7


def test_the_set_rule_is_the_median_plus_three_robust_deviations():
    # median 0.2, absolute deviations 0.1, 0, 0, 0.1, 0.7 -> MAD 0.1; 0.2 + 3 x 1.4826 x 0.1 = 0.64478
    threshold = set_threshold([0.1, 0.2, 0.2, 0.3, 0.9])
    assert threshold.image == pytest.approx(0.64478) and threshold.pixel == threshold.image
    assert threshold.source == "set" and [threshold.verdict(s) for s in (0.3, 0.9)] == ["OK", "NG"]


@pytest.mark.parametrize("value", [-0.1, 1.5, "high", float("nan")])
def test_user_thresholds_outside_0_1_are_refused(value):
    with pytest.raises(UserInputError, match="between 0 and 1"):
        user_threshold(value)


def test_verdict_is_ng_only_above_the_threshold():
    threshold = user_threshold(0.4)
    assert (threshold.verdict(0.4), threshold.verdict(0.4001), threshold.verdict(0.1)) == ("OK", "NG", "OK")


def test_outline_is_the_inner_border_of_each_region():
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    outline = region_outline(mask)
    expected = mask.copy()
    expected[3:5, 3:5] = False
    assert np.array_equal(outline, expected)


def test_overlay_draws_the_outline_in_white_and_nothing_without_a_region():
    from PIL import Image

    image = Image.new("RGB", (10, 10), (0, 0, 0))
    scores = np.zeros((10, 10), np.float32)
    scores[3:7, 3:7] = 0.9
    pixels = np.asarray(inspection_overlay(image, scores, pixel_threshold=0.5))
    white = (pixels == 255).all(axis=-1)
    assert np.array_equal(white, region_outline(scores > 0.5))
    assert not (np.asarray(inspection_overlay(image, scores, pixel_threshold=0.95)) == 255).all(axis=-1).any()
