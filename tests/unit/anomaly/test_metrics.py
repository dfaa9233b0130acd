"""Anomaly metrics: exact against scikit-learn, PRO against a brute-force reference and hand-made cases."""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import pytest
from sklearn import metrics as sk

from engine.anomaly.metrics import (
    aupro,
    auroc,
    connected_components,
    evaluate,
    f1_max,
    pixel_auroc,
    pro_curve,
    roc_curve,
)
from engine.errors import UserInputError


def random_binary(seed: int, n: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    scores = rng.normal(size=n) + labels  # informative but imperfect
    if ties:
        scores = np.round(scores * 4) / 4  # a few dozen distinct values: many ties, across classes too
    return labels.astype(int), scores


# ---------------------------------------------------------------------------------------------
# Image level against scikit-learn
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_curve_and_auroc_match_sklearn(seed, ties):
    labels, scores = random_binary(seed, 400, ties)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    sk_fpr, sk_tpr, sk_thresholds = sk.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, rtol=0, atol=1e-9)
    np.testing.assert_allclose(tpr, sk_tpr, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(thresholds, sk_thresholds)
    if ties:
        assert thresholds.size < 60  # the ties really collapsed
    assert auroc(labels, scores) == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-9)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_f1_max_matches_sklearn_precision_recall_curve(seed, ties):
    labels, scores = random_binary(seed, 400, ties)
    precision, recall, thresholds = sk.precision_recall_curve(labels, scores, drop_intermediate=False)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)[:-1]
    best, threshold = f1_max(labels, scores)
    assert best == pytest.approx(f1.max(), abs=1e-9)
    assert threshold == thresholds[np.argmax(f1)]
    # The threshold really gives that F1 when used as `score >= threshold`.
    assert sk.f1_score(labels, scores >= threshold) == pytest.approx(best, abs=1e-9)


def test_auroc_and_f1_by_hand():
    labels = [0, 0, 1, 1]
    scores = [0.1, 0.4, 0.35, 0.8]
    # Pairs (defective, good): (0.35, 0.1) ok, (0.35, 0.4) wrong, (0.8, *) ok -> 3 of 4.
    assert auroc(labels, scores) == 0.75
    # Thresholds 0.8: F1 2/3; 0.4: 1/2; 0.35: TP 2, FP 1 -> 4/5; 0.1: 2/3.
    assert f1_max(labels, scores) == (pytest.approx(0.8), 0.35)
    # A tie in F1 (0.9: TP 1, FP 0 and 0.6: TP 2, FP 2 both give 2/3) returns the lower threshold.
    assert f1_max([1, 0, 0, 1], [0.9, 0.8, 0.7, 0.6]) == (pytest.approx(2 / 3), 0.6)
    # A tie between a good and a defective sample counts one half: (0.5, 0.5) -> 0.5, others ok.
    assert auroc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == 0.875
    assert auroc([True, False], [0.0, 1.0]) == 0.0


def test_one_class_only_is_a_clear_user_error():
    for metric in (roc_curve, auroc, f1_max):
        with pytest.raises(UserInputError, match=r"only good samples \(3\); this metric needs both good and defective"):
            metric([0, 0, 0], [0.1, 0.2, 0.3])
        with pytest.raises(UserInputError, match="only defective samples"):
            metric([1, 1], [0.1, 0.2])
    with pytest.raises(UserInputError, match="0 \\(good\\) or 1 \\(defective\\)"):
        auroc([0, 2], [0.1, 0.2])
    with pytest.raises(UserInputError, match="NaN or infinite"):
        auroc([0, 1], [0.1, np.nan])
    with pytest.raises(UserInputError, match="differ in length"):
        auroc([0, 1, 1], [0.1, 0.2])


# ---------------------------------------------------------------------------------------------
# Connected components
# ---------------------------------------------------------------------------------------------


def flood_fill_count(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Reference labelling: breadth-first flood fill over the 8 neighbours, raster order."""
    labels = np.zeros(mask.shape, dtype=int)
    count = 0
    height, width = mask.shape
    for start in zip(*np.nonzero(mask), strict=True):
        if labels[start]:
            continue
        count += 1
        labels[start] = count
        queue = deque([start])
        while queue:
            y, x = queue.popleft()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        queue.append((ny, nx))
    return labels, count


def test_connected_components_by_hand_joins_diagonal_touches():
    mask = np.array(
        [
            [1, 1, 0, 0, 0, 0, 1],
            [0, 0, 1, 0, 0, 0, 0],  # touches the pair above only diagonally: same region
            [0, 0, 0, 0, 1, 1, 0],
            [1, 0, 0, 0, 1, 0, 0],
            [0, 1, 0, 0, 0, 0, 1],  # (4, 1) touches (3, 0) diagonally; (4, 6) is alone
        ],
        dtype=bool,
    )
    labels, count = connected_components(mask)
    assert count == 5
    expected = np.array(
        [
            [1, 1, 0, 0, 0, 0, 2],
            [0, 0, 1, 0, 0, 0, 0],
            [0, 0, 0, 0, 3, 3, 0],
            [4, 0, 0, 0, 3, 0, 0],
            [0, 4, 0, 0, 0, 0, 5],
        ]
    )
    np.testing.assert_array_equal(labels, expected)
    # An anti-diagonal line is one region; the same pixels with a gap are two.
    assert connected_components(np.eye(6, dtype=bool)[::-1])[1] == 1
    broken = np.eye(6, dtype=bool)
    broken[3, 3] = False
    assert connected_components(broken)[1] == 2
    assert connected_components(np.zeros((4, 5), bool))[1] == 0
    assert connected_components(np.ones((4, 5), bool))[1] == 1


@pytest.mark.parametrize("density", [0.2, 0.35, 0.6])
def test_connected_components_match_flood_fill(density):
    mask = np.random.default_rng(7).random((40, 53)) < density
    labels, count = connected_components(mask)
    expected, expected_count = flood_fill_count(mask)
    assert count == expected_count >= 1
    np.testing.assert_array_equal(labels, expected)


def test_connected_components_are_fast_on_large_masks():
    yy, xx = np.mgrid[:512, :512]
    blobs = np.zeros((512, 512), bool)
    for cy, cx, r in [(60, 80, 40), (300, 200, 25), (450, 450, 55), (120, 400, 10), (140, 410, 12)]:
        blobs |= (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    masks = [np.roll(blobs, (37 * i, 91 * i), axis=(0, 1)) for i in range(20)]
    start = time.perf_counter()
    counts = [connected_components(mask)[1] for mask in masks]
    assert time.perf_counter() - start < 5.0  # about 0.2 s on one laptop core; a Python loop takes minutes
    assert counts[0] == 4  # the two small discs overlap
    assert all(4 <= count <= 12 for count in counts)  # rolling may cut a disc at the border


# ---------------------------------------------------------------------------------------------
# Pixel AUROC and PRO
# ---------------------------------------------------------------------------------------------


def random_masks_and_maps(seed: int) -> tuple[list[np.ndarray | None], list[np.ndarray]]:
    """Images of different sizes, some good (mask None), some with blobs; noisy maps that see them partly."""
    rng = np.random.default_rng(seed)
    masks: list[np.ndarray | None] = []
    maps: list[np.ndarray] = []
    for i, (height, width) in enumerate([(30, 40), (25, 25), (40, 31), (30, 40), (20, 50), (33, 27)]):
        if i % 3 == 0:
            masks.append(None)
            maps.append(rng.random((height, width)))
            continue
        yy, xx = np.mgrid[:height, :width]
        mask = np.zeros((height, width), bool)
        for _ in range(3):
            cy, cx = rng.integers(0, height), rng.integers(0, width)
            mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(2, 7) ** 2
        masks.append(mask)
        maps.append(np.round(rng.random((height, width)) + 0.6 * mask * rng.random(), 2))  # ties too
    return masks, maps


def test_pixel_auroc_equals_sklearn_on_flattened_pixels():
    masks, maps = random_masks_and_maps(0)
    pairs = zip(masks, maps, strict=True)
    flat_labels = np.concatenate([np.zeros(m.size, bool) if g is None else g.ravel() for g, m in pairs])
    flat_scores = np.concatenate([m.ravel() for m in maps])
    assert pixel_auroc(masks, maps) == pytest.approx(sk.roc_auc_score(flat_labels, flat_scores), abs=1e-9)


def brute_force_pro_curve(masks, maps, thresholds=None):
    """PRO straight from the definition: per threshold, per region, with the flood-fill labelling."""
    regions, normal_scores = [], []
    for mask, anomaly_map in zip(masks, maps, strict=True):
        mask = np.zeros(anomaly_map.shape, bool) if mask is None else mask
        labels, count = flood_fill_count(mask)
        regions += [anomaly_map[labels == k] for k in range(1, count + 1)]
        normal_scores.append(anomaly_map[~mask])
    normal = np.concatenate(normal_scores)
    if thresholds is None:
        thresholds = np.unique(np.concatenate([m.ravel() for m in maps]))[::-1]
    fpr = [0.0] + [np.mean(normal >= t) for t in thresholds]
    pro = [0.0] + [np.mean([np.mean(region >= t) for region in regions]) for t in thresholds]
    return np.array(fpr), np.array(pro)


def test_pro_curve_matches_the_definition():
    masks, maps = random_masks_and_maps(1)
    fpr, pro, thresholds = pro_curve(masks, maps)
    expected_fpr, expected_pro = brute_force_pro_curve(masks, maps)
    np.testing.assert_allclose(fpr, expected_fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pro, expected_pro, rtol=0, atol=1e-12)
    assert thresholds[0] == np.inf and np.all(np.diff(thresholds) < 0)
    assert fpr[-1] == 1.0 and pro[-1] == pytest.approx(1.0)

    # Binned thresholds: the same definition at evenly spaced thresholds, close to the exact area.
    fpr, pro, thresholds = pro_curve(masks, maps, num_thresholds=50)
    expected_fpr, expected_pro = brute_force_pro_curve(masks, maps, thresholds[1:])
    np.testing.assert_allclose(fpr, expected_fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pro, expected_pro, rtol=0, atol=1e-12)
    assert aupro(masks, maps, num_thresholds=2000) == pytest.approx(aupro(masks, maps), abs=2e-3)


def test_aupro_integrates_the_curve_up_to_max_fpr():
    masks, maps = random_masks_and_maps(2)
    fpr, pro, _ = pro_curve(masks, maps)
    for max_fpr in (0.3, 0.05, 1.0):
        # Reference: dense resampling of the piecewise-linear curve (it is monotone, so the right
        # end of each vertical step is the value just after it).
        grid = np.linspace(0.0, max_fpr, 200_001)
        keep = np.append(np.diff(fpr) > 0, True)
        values = np.interp(grid, fpr[keep], pro[keep])
        reference = np.sum((values[1:] + values[:-1]) / 2 * np.diff(grid)) / max_fpr
        assert aupro(masks, maps, max_fpr=max_fpr) == pytest.approx(reference, abs=1e-4)


def test_aupro_of_a_perfect_map_is_one():
    masks, _ = random_masks_and_maps(3)
    perfect = [np.zeros((9, 9)) if g is None else g.astype(float) for g in masks]
    masks = [np.zeros((9, 9), bool) if g is None else g for g in masks]
    assert aupro(masks, perfect) == 1.0
    assert aupro(masks, perfect, num_thresholds=10) == 1.0
    assert pixel_auroc(masks, perfect) == 1.0


def test_aupro_averages_over_regions_one_found_one_missed():
    # A small region that the map finds and a large one that it misses entirely: PRO is 0.5 over
    # the whole flat part of the curve, though only 4 of 40 defect pixels are found.
    mask = np.zeros((20, 20), bool)
    mask[2:4, 2:4] = True  # found: 4 pixels
    mask[10:16, 10:16] = True  # missed: 36 pixels
    rng = np.random.default_rng(0)
    anomaly_map = rng.uniform(0.1, 0.9, mask.shape)  # normal pixels, all distinct
    anomaly_map[2:4, 2:4] = 1.0
    anomaly_map[10:16, 10:16] = 0.0
    fpr, pro, _ = pro_curve([mask], [anomaly_map])
    flat = (fpr > 0) & (fpr < 1)
    assert flat.sum() > 300 and np.all(pro[flat] == 0.5)
    assert aupro([mask], [anomaly_map]) == pytest.approx(0.5, abs=1e-12)
    assert aupro([mask], [anomaly_map], max_fpr=1.0) == pytest.approx(0.5, abs=1e-12)
    # Same regions split over two images, plus a good image: the same.
    first, second = mask.copy(), mask.copy()
    first[10:16, 10:16] = False
    second[2:4, 2:4] = False
    first_map, second_map = anomaly_map.copy(), anomaly_map.copy()
    first_map[10:16, 10:16] = rng.uniform(0.1, 0.9, (6, 6))  # normal pixels here
    second_map[2:4, 2:4] = rng.uniform(0.1, 0.9, (2, 2))
    good = rng.uniform(0.1, 0.9, (20, 20))
    assert aupro([first, second, None], [first_map, second_map, good]) == pytest.approx(0.5, abs=1e-12)
    # Finding half of the small region: 0.25.
    anomaly_map[2:4, 2] = 0.0
    assert aupro([mask], [anomaly_map]) == pytest.approx(0.25, abs=1e-12)


def test_aupro_is_invariant_to_monotone_rescaling():
    masks, maps = random_masks_and_maps(4)
    reference = aupro(masks, maps)
    assert 0.2 < reference < 0.95
    for rescale in (lambda m: np.exp(3 * m), lambda m: m**3 - 7, lambda m: 100 * m + 2):
        assert aupro(masks, [rescale(m) for m in maps]) == pytest.approx(reference, abs=1e-12)
    # Binned thresholds follow affine rescaling only (scores off the threshold grid, so that
    # rounding cannot move a score across a threshold).
    maps = [m + np.random.default_rng(i).uniform(0, 1e-3, m.shape) for i, m in enumerate(maps)]
    binned = aupro(masks, maps, num_thresholds=100)
    assert aupro(masks, [5 * m - 1 for m in maps], num_thresholds=100) == pytest.approx(binned, abs=1e-9)


def test_pixel_inputs_are_checked():
    mask = np.zeros((4, 4), bool)
    with pytest.raises(UserInputError, match=r"mask 0 has shape \(4, 4\) but its anomaly map has shape \(4, 5\)"):
        pixel_auroc([mask], [np.zeros((4, 5))])
    with pytest.raises(UserInputError, match="at least one defect region"):
        aupro([mask, None], [np.zeros((4, 4)), np.ones((4, 4))])
    with pytest.raises(UserInputError, match="got 1 masks but 2 anomaly maps"):
        aupro([mask], [np.zeros((4, 4))] * 2)
    with pytest.raises(UserInputError, match="only good samples"):
        pixel_auroc([mask], [np.zeros((4, 4))])


# ---------------------------------------------------------------------------------------------
# A whole evaluation
# ---------------------------------------------------------------------------------------------


def test_evaluate_reports_overall_and_per_defect_type_against_all_good_images():
    masks, maps = random_masks_and_maps(5)
    rng = np.random.default_rng(5)
    # Images 0 and 3 are good (no mask); four defective ones of two types; one more defective image
    # without a mask (its pixels are unknown: left out of the pixel metrics).
    labels = np.array([0 if m is None else 1 for m in masks] + [1])
    masks = [*masks, None]
    maps = [*maps, rng.random((10, 10))]
    types = ["good", "scratch", "dent", "good", "scratch", "dent", "crack"]
    scores = rng.random(labels.size) + labels * 0.3

    report = evaluate(labels, scores, masks, maps, types)

    assert report["image_auroc"] == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)
    assert (report["image_f1_max"], report["image_f1_threshold"]) == f1_max(labels, scores)
    with_pixels = [0, 1, 2, 3, 4, 5]
    assert report["pixel_auroc"] == pixel_auroc([masks[i] for i in with_pixels], [maps[i] for i in with_pixels])
    assert report["pro"] == aupro([masks[i] for i in with_pixels], [maps[i] for i in with_pixels], max_fpr=0.3)
    assert report["num_images"] == 7 and report["num_defective"] == 5

    per_type = report["per_defect_type"]
    assert sorted(per_type) == ["crack", "dent", "scratch"]
    scratch = [0, 3, 1, 4]  # all good images and the scratches
    assert per_type["scratch"]["image_auroc"] == auroc(labels[scratch], scores[scratch])
    assert per_type["scratch"]["image_f1_max"] == f1_max(labels[scratch], scores[scratch])[0]
    assert per_type["scratch"]["pixel_auroc"] == pixel_auroc([masks[i] for i in scratch], [maps[i] for i in scratch])
    assert per_type["scratch"]["pro"] == aupro([masks[i] for i in scratch], [maps[i] for i in scratch])
    assert per_type["scratch"]["num_images"] == 4
    assert per_type["crack"]["pixel_auroc"] is None and per_type["crack"]["pro"] is None  # no mask at all
    assert per_type["crack"]["image_auroc"] == auroc(labels[[0, 3, 6]], scores[[0, 3, 6]])


def test_evaluate_without_maps_and_with_inconsistent_inputs():
    report = evaluate([0, 1, 1, 0], [0.1, 0.8, 0.3, 0.4])
    assert report["image_auroc"] == 0.75 and report["pixel_auroc"] is None and report["pro"] is None
    assert report["per_defect_type"] == {}
    bad_mask = np.ones((3, 3), bool)
    with pytest.raises(UserInputError, match="image 0 is labelled good but its mask marks defect pixels"):
        evaluate([0, 1], [0.1, 0.9], [bad_mask, bad_mask], [np.zeros((3, 3))] * 2)
    with pytest.raises(UserInputError, match="only defective samples"):
        evaluate([1, 1], [0.1, 0.9])
