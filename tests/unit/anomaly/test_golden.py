"""The tiny preset's scores and maps on fixed inputs, recorded from the code before the contract refactor
(issue 13): the refactor and the metrics' move to scikit-learn / scipy must not change them (1e-6)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.anomaly import evaluate
from engine.anomaly import inspect_images as images_job
from engine.anomaly.evaluation import evaluate_folder
from engine.anomaly.thresholds import calibrate_threshold
from engine.media import load_image

# Per image (mpdd_metal_plate/test/defect/000.png, 001.png): score, map mean, std, min, max, map[10, 20].
ZERO_SHOT = [
    [0.5667023062705994, 0.5623350143432617, 0.012611172161996365, 0.5356190204620361, 0.5852353572845459,
     0.5704225301742554],
    [0.5613633990287781, 0.5555005073547363, 0.01226199883967638, 0.5343045592308044, 0.5805366635322571,
     0.5654212832450867],
]
# The same with 002.png and 003.png as good references (WinCLIP+).
FEW_SHOT = [
    [0.3130914866924286, 0.28466254472732544, 0.006263463292270899, 0.26974377036094666, 0.3117472231388092,
     0.2852446138858795],
    [0.30972760915756226, 0.2824479043483734, 0.007036714348942041, 0.26903995871543884, 0.3140878975391388,
     0.2834596633911133],
]
CALIBRATED = (0.32309787425662456, 0.313371866941452)  # image and pixel threshold from 002.png and 003.png
# magnetic_tile, 1 shot: image AUROC, pixel AUROC, PRO, F1-max; overall, then per defect type.
METRICS = {
    "all": (0.47, 0.5545572549013339, 0.14128897525692696, 0.8064516129032258),
    "blowhole": (0.6833333333333333, 0.6846361834612611, 0.23489540575834006, 0.5714285714285714),
    "break": (0.5666666666666667, 0.5208669375332292, 0.16892573161523064, 0.5333333333333333),
    "crack": (0.23333333333333334, 0.41467366110115944, 0.0599406799391403, 0.45454545454545453),
    "fray": (0.5333333333333333, 0.4864622466851891, 0.07462974414810339, 0.5333333333333333),
    "uneven": (0.3333333333333333, 0.5820651340125126, 0.08267860016869927, 0.45454545454545453),
}
GOLDEN = 1e-6


def _statistics(results) -> list[list[float]]:
    return [[r.score, float(r.anomaly_map.mean()), float(r.anomaly_map.std()), float(r.anomaly_map.min()),
             float(r.anomaly_map.max()), float(r.anomaly_map[10, 20])] for r in results]


@pytest.fixture(scope="module")
def plates(metal_plate_images):
    assert [p.parent.name + "/" + p.name for p in metal_plate_images[:4]] == [
        "defect/000.png", "defect/001.png", "defect/002.png", "defect/003.png"]
    return metal_plate_images[:4]


def test_scores_and_maps_zero_and_few_shot(tiny_pipeline, plates):
    images = [load_image(p) for p in plates[:2]]
    references = [load_image(p) for p in plates[2:]]
    np.testing.assert_allclose(_statistics(tiny_pipeline(images, "metal plate")), ZERO_SHOT, rtol=0, atol=GOLDEN)
    np.testing.assert_allclose(_statistics(tiny_pipeline(images, "metal plate", references=references)), FEW_SHOT,
                               rtol=0, atol=GOLDEN)
    threshold = calibrate_threshold(tiny_pipeline, "metal plate", references)
    np.testing.assert_allclose((threshold.image, threshold.pixel), CALIBRATED, rtol=0, atol=GOLDEN)


def test_an_inspection_job_records_the_same_scores(tiny_pipeline, plates, tmp_path):
    inputs = images_job.Inputs([(p.name, p) for p in plates[:2]], [(p.name, p) for p in plates[2:]])
    result = images_job.run(inputs, images_job.Params(object_name="metal plate", preset="winclip-tiny"), tmp_path)
    assert result.threshold.source == "calibrated"
    np.testing.assert_allclose([(r["score"], r["map_min"], r["map_max"]) for r in result.images],
                               [(s[0], s[3], s[4]) for s in FEW_SHOT], rtol=0, atol=GOLDEN)
    np.testing.assert_allclose((result.threshold.image, result.threshold.pixel), CALIBRATED, rtol=0, atol=GOLDEN)


def test_evaluation_metrics_on_the_magnetic_tile_set(tiny_pipeline, shared_data):
    params = evaluate.Params(object_name="magnetic tile", preset="winclip-tiny", shots=1)
    metrics = evaluate_folder(tiny_pipeline, shared_data / "anomaly" / "magnetic_tile", params).metrics
    found = {"all": metrics, **metrics["per_defect_type"]}
    assert set(found) == set(METRICS)
    for name, expected in METRICS.items():
        values = [found[name][key] for key in ("image_auroc", "pixel_auroc", "pro", "image_f1_max")]
        np.testing.assert_allclose(values, expected, rtol=0, atol=GOLDEN, err_msg=name)
