"""Few-shot detection engine on the tiny RT-DETR preset: learning beats the baseline, COCO mAP on hand cases,
save/reload, seeds, cancel, divergence, bad sets, and completion with the fine-tuned detector."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from engine.annotations.coco import write_coco
from engine.annotations.dataset import Box, Dataset, ImageRecord
from engine.completion import complete
from engine.completion.evaluation import drop_boxes, match_proposals
from engine.completion.logic import iou_matrix
from engine.errors import UserInputError
from engine.finetune.detect import Params
from engine.finetune.detect.data import load_detection_set, split_held_out
from engine.finetune.detect.metrics import detection_map
from engine.finetune.detect.runs import predict_files, train_and_save
from engine.finetune.detect.train import evaluate, targets_of, train
from engine.models.rtdetr import DetectionPredictor, build_detector
from engine.progress import Cancelled
from tests.helpers import FIRST_PAGE_NOTE, shape_detection_set, with_a_scan

torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a shared CPU
TINY = "detection-tiny"
CPU = torch.device("cpu")


def files_of(root):
    return [(str(p.relative_to(root)), p) for p in sorted(root.rglob("*")) if p.is_file()]


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory):
    return shape_detection_set(tmp_path_factory.mktemp("shapes"), count=24)


@pytest.fixture(scope="module")
def shapes(shapes_root, tmp_path_factory) -> Dataset:
    return load_detection_set(files_of(shapes_root), tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = train_and_save(shapes, Params(model_name="shapes", preset=TINY, steps=150, patience=100), out)
    return result.to_json(), result.outputs, out


def test_fine_tuning_raises_held_out_map_clearly_above_the_baseline(trained):
    summary, files, out = trained
    baseline, tuned = summary["metrics"]["baseline"], summary["metrics"]["fine_tuned"]
    assert summary["held_out_images"] == 7 and baseline["images"] == tuned["images"] == 7
    assert baseline["map_50"] <= 0.05 and tuned["map_50"] >= 0.5 and tuned["map_50"] - baseline["map_50"] >= 0.45
    assert tuned["map"] > baseline["map"] + 0.15
    assert set(tuned["per_class"]) == {"square", "circle"} and all(c["boxes"] for c in tuned["per_class"].values())
    first = summary["history"][0]
    assert first["step"] == 0 and first["held_out_map_50"] == baseline["map_50"] and first["loss"] is None
    best = next(r for r in summary["history"] if r["step"] == summary["best_step"])
    assert best["held_out_map"] == tuned["map"]
    assert summary["settings"]["learning_rate"] == 3e-3 and summary["seconds"] < 60
    assert files == ["metrics.json", "history.csv", "model.zip"] and all((out / f).is_file() for f in files)


def test_map_is_cocos_on_hand_cases():
    truth = [[Box(10, 10, 20, 20, "a"), Box(40, 40, 10, 10, "b")], [Box(5, 5, 30, 30, "a")]]

    def scored(boxes, rename=lambda c: c):
        return [[Box(b.x, b.y, b.width, b.height, rename(b.category), 0.9) for b in image] for image in boxes]

    perfect = detection_map(truth, scored(truth), ["a", "b"])
    assert perfect["map_50"] == pytest.approx(1.0) and perfect["map"] == pytest.approx(1.0)
    swapped = detection_map(truth, scored(truth, {"a": "b", "b": "a"}.get), ["a", "b"])
    assert swapped["map_50"] == 0.0 and swapped["map"] == 0.0
    # one of two boxes found: precision 1 up to recall 0.5, then nothing: 51 of COCO's 101 recall points
    half = detection_map([[Box(0, 0, 10, 10, "a"), Box(20, 20, 10, 10, "a")]], [[Box(0, 0, 10, 10, "a", 0.9)]], ["a"])
    assert half["map_50"] == pytest.approx(51 / 101) and half["map"] == pytest.approx(51 / 101)
    # a false positive ranked above the true one: precision 1/2 at every recall
    ranked = detection_map([[Box(0, 0, 10, 10, "a")]], [[Box(50, 50, 10, 10, "a", 0.9), Box(0, 0, 10, 10, "a", 0.8)]],
                           ["a"])
    assert ranked["map_50"] == pytest.approx(0.5)
    # IoU 70 / 130 = 0.54 (a 10 x 10 box shifted by 3 px): a hit at IoU 0.50 only of COCO's ten thresholds
    shifted = detection_map([[Box(0, 0, 10, 10, "a")]], [[Box(3, 0, 10, 10, "a", 0.9)]], ["a"])
    assert shifted["map_50"] == pytest.approx(1.0) and shifted["map"] == pytest.approx(0.1)
    nothing = detection_map([[Box(0, 0, 10, 10, "a")]], [[]], ["a", "b"])
    assert nothing["map"] == 0.0 and nothing["per_class"]["b"] == {"ap_50": None, "ap": None, "boxes": 0}


def test_a_saved_detector_reloads_and_predicts_exactly_as_before(shapes, trained, tmp_path):
    summary, _, out = trained
    with zipfile.ZipFile(out / "model.zip") as bundle:
        assert sorted(bundle.namelist()) == ["model.json", "weights.safetensors"]
        bundle.extractall(tmp_path / "copy")
    meta = json.loads((tmp_path / "copy/model.json").read_text())
    assert meta["task"] == "detect" and meta["classes"] == ["square", "circle"] and meta["base_preset"] == TINY
    assert meta["metrics"] == summary["metrics"] and meta["settings"] == summary["settings"]
    pictures = [image.load() for image in shapes.images]
    again = DetectionPredictor(tmp_path / "copy")(pictures)
    assert again == DetectionPredictor(out / "model")(pictures) and sum(map(len, again)) > 0
    from safetensors.torch import load_file

    saved = load_file(str(out / "model/weights.safetensors"))
    assert saved and not any(k.startswith("model.backbone.") for k in saved)  # the frozen backbone is the base's
    base = build_detector(TINY, ["square", "circle"], CPU).model.state_dict()
    loaded = DetectionPredictor(out / "model").detector.model.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in base.items() if k.startswith("model.backbone."))


def test_predict_files_draws_the_boxes_and_lists_bad_images(trained, shapes_root, tmp_path):
    _, _, out = trained
    (tmp_path / "broken.png").write_text("not an image")
    images = [("a.png", shapes_root / "images/shapes_000.png"), ("broken.png", tmp_path / "broken.png")]
    predictions = predict_files(out / "model", images, tmp_path / "out", score_threshold=0.3)
    result, written = predictions.to_json(), predictions.outputs
    assert written[:2] == ["detections.json", "detections.csv"] and len(written) == 3
    assert (tmp_path / "out" / written[2]).is_file()
    assert [p["file"] for p in result["predictions"]] == ["a.png"] and result["skipped"][0]["file"] == "broken.png"
    assert all(b["score"] >= 0.3 and b["category"] in ("square", "circle") for b in result["predictions"][0]["boxes"])
    with pytest.raises(UserInputError, match="between 0 and 1"):
        predict_files(out / "model", images, tmp_path / "o", score_threshold=2)


def test_the_same_seed_gives_the_same_result_and_another_seed_differs(shapes, tmp_path):
    settings = Params(preset=TINY, steps=6, eval_every=3)
    first = train_and_save(shapes, settings.replace(model_name="a"), tmp_path / "a").to_json()
    second = train_and_save(shapes, settings.replace(model_name="b"), tmp_path / "b").to_json()
    third = train_and_save(shapes, settings.replace(model_name="c", seed=1), tmp_path / "c").to_json()
    assert first["history"] == second["history"]
    weights = [(tmp_path / run / "model/weights.safetensors").read_bytes() for run in "ab"]
    assert weights[0] == weights[1]
    assert third["history"] != first["history"] and third["held_out"] != first["held_out"]


def test_a_stop_request_keeps_the_best_checkpoint_so_far(shapes):
    detector = build_detector(TINY, shapes.categories, CPU)
    train_idx, held_idx = split_held_out(shapes, 0.3, 0)
    train_images, held_images = [shapes.images[i] for i in train_idx], [shapes.images[i] for i in held_idx]
    held_x = detector.spec.encode(image.load() for image in held_images)
    calls = []

    def cancel_at_step_12(fraction: float, message: str) -> None:
        calls.append(message)
        if len(calls) == 12:
            raise Cancelled

    settings = Params(preset=TINY, steps=50, eval_every=5, patience=100).for_preset()
    result = train(detector, detector.spec.encode(image.load() for image in train_images),
                   targets_of(train_images, detector.classes), held_x, held_images, settings,
                   progress=cancel_at_step_12)
    assert result.stopped == "cancelled" and result.steps_run == 12 and result.best_step in (0, 5, 10)
    now = evaluate(detector, held_x, held_images)
    assert (now["map"], now["map_50"], now["loss"]) == (result.best["map"], result.best["map_50"], result.best["loss"])


def test_divergence_is_a_clear_error_and_nothing_is_saved(shapes, tmp_path):
    detector = build_detector(TINY, shapes.categories, CPU)
    detector.spec = dataclasses.replace(detector.spec, rescale=float("nan"))
    images = shapes.images[:4]
    with pytest.raises(UserInputError, match=r"Training diverged.*no model was saved"):
        train(detector, detector.spec.encode(image.load() for image in images), targets_of(images, detector.classes),
              torch.zeros(0, 3, 64, 64, dtype=torch.uint8), [], Params(preset=TINY, steps=3).for_preset())


def _write(root, name, size=(32, 32)):
    root.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size[::-1], 3), 128, np.uint8)).save(root / name)


def test_bad_sets_say_what_to_fix(tmp_path, monkeypatch, shapes_root):
    _write(tmp_path / "plain", "a.png")
    with pytest.raises(UserInputError, match="No annotated boxes"):
        load_detection_set(files_of(tmp_path / "plain"), tmp_path / "w1")
    coco = json.loads((shapes_root / "annotations.json").read_text())
    coco["categories"].append({"id": 3, "name": "triangle"})
    (tmp_path / "extra.json").write_text(json.dumps(coco))
    files = [f for f in files_of(shapes_root) if f[0].endswith(".png")]
    files.append(("annotations.json", tmp_path / "extra.json"))
    with pytest.raises(UserInputError, match="Class 'triangle' has no boxes"):
        load_detection_set(files, tmp_path / "w2")
    voc = tmp_path / "voc"
    _write(voc, "a.png")
    objects = "".join(f"<object><name>{n}</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax>"
                      "</bndbox></object>" for n in ("Square", "square"))
    (voc / "a.xml").write_text(f"<annotation><filename>a.png</filename>{objects}</annotation>")
    with pytest.raises(UserInputError, match="Duplicate class name"):
        load_detection_set(files_of(voc), tmp_path / "w3")
    monkeypatch.setenv("FEWSHOT_FINETUNE_MAX_IMAGES", "5")
    with pytest.raises(UserInputError, match="24 images given; at most 5"):
        load_detection_set(files_of(shapes_root), tmp_path / "w4")


def test_undecodable_images_are_skipped_and_one_class_is_a_valid_set(tmp_path, shapes_root):
    root = shape_detection_set(tmp_path / "set", count=4)
    (root / "images/shapes_003.png").write_bytes(b"truncated")
    data = load_detection_set(files_of(root), tmp_path / "w")
    assert len(data.images) == 3 and any("shapes_003.png" in s["error"] for s in data.skipped)
    one = Dataset([ImageRecord("a.png", 64, 64, [Box(1, 1, 10, 10, "dot")], tmp_path / "a.png"),
                   ImageRecord("b.png", 64, 64, [Box(5, 5, 10, 10, "dot")], tmp_path / "b.png"),
                   ImageRecord("c.png", 64, 64, [], tmp_path / "c.png")], ["dot"])
    assert split_held_out(one, 0.5, 0)[1] in ([0], [1])  # held out: one annotated image; background trains


def test_the_held_out_split_leaves_every_class_a_training_box(shapes):
    for seed in range(5):
        train_idx, held_idx = split_held_out(shapes, 0.3, seed)
        assert len(held_idx) == 7 and not set(train_idx) & set(held_idx)
        classes = {b.category for i in train_idx for b in shapes.images[i].boxes}
        assert classes == {"square", "circle"}
    rare = Dataset([ImageRecord("a", 8, 8, [Box(0, 0, 2, 2, "x")]), ImageRecord("b", 8, 8, [Box(0, 0, 2, 2, "y")])],
                   ["x", "y"])
    assert split_held_out(rare, 0.5, 0) == ([0, 1], [])  # holding either out would leave a class unlearnt


def test_completion_with_the_fine_tuned_detector_proposes_the_missing_boxes(trained, shapes_root, tmp_path):
    _, _, out = trained
    files = files_of(shapes_root)
    full = load_detection_set(files, tmp_path / "w")
    partial, hidden = drop_boxes(full, 0.5, seed=0)
    write_coco(partial, tmp_path / "partial.json")
    inputs = [f for f in files if f[0].endswith(".png")] + [("annotations.json", tmp_path / "partial.json")]
    result = complete.run(complete.Inputs(images=inputs, annotations=[], video=[]),
                          complete.Params(detector=str(out / "model")), tmp_path / "out")
    report, written = result.to_json(), result.outputs
    assert report["detector"] == "shapes" and report["preset"] == TINY and report["random_weights"] is True
    assert report["exemplars"] == 2 and "proposals.json" in written and "completed_coco.json" in written
    document = json.loads((tmp_path / "out/proposals.json").read_text())
    assert [e["kind"] for e in document["exemplars"]] == ["detector", "detector"]
    proposals = {}
    for item in document["images"]:
        existing = np.array([[x, y, x + w, y + h] for x, y, w, h in (e["box"] for e in item["existing"])])
        for p in item["proposals"]:
            x, y, w, h = p["box"]
            if len(existing):
                assert iou_matrix(np.array([x, y, x + w, y + h]), existing).max() <= 0.5  # not already annotated
            proposals.setdefault(item["file"], []).append(Box(x, y, w, h, p["category"], p["score"]))
    found = match_proposals(proposals, hidden, score_threshold=0.3)["overall"]
    assert found["hidden"] >= 10 and found["recall"] >= 0.5


def test_completion_maps_classes_by_name_and_refuses_a_detector_of_other_classes(trained):
    _, _, out = trained
    from engine.completion.finetuned import DetectorCompletion

    engine = DetectorCompletion.from_model_dir(out / "model")
    assert engine.class_map(Dataset([], ["Circle", "bolt"])) == {"circle": "Circle"}
    unlabelled = Dataset([], [])
    assert engine.class_map(unlabelled) == {"square": "square", "circle": "circle"}
    assert unlabelled.categories == ["square", "circle"]
    with pytest.raises(UserInputError, match="none match"):
        engine.class_map(Dataset([], ["bolt"]))


@pytest.mark.parametrize("labels", ["yolo", "coco"])
def test_an_image_whose_every_box_was_skipped_is_left_out_not_trained_as_background(tmp_path, labels):
    """YOLO labels written in pixels instead of fractions (or COCO boxes past the image) are skipped; the image kept
    with no boxes would teach that its objects are nothing to find. An image with no annotations stays background."""
    for name in ("good.png", "pixels.png", "empty.png"):
        _write(tmp_path, name)
    if labels == "yolo":
        (tmp_path / "classes.txt").write_text("dot\n")
        (tmp_path / "good.txt").write_text("0 0.5 0.5 0.2 0.2\n")
        (tmp_path / "pixels.txt").write_text("0 12 15 6 6\r\n")
    else:
        (tmp_path / "set.json").write_text(json.dumps({
            "images": [{"id": 1, "file_name": "good.png"}, {"id": 2, "file_name": "pixels.png"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 6, 6]},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [120, 150, 60, 60]}],
            "categories": [{"id": 1, "name": "dot"}]}))
    data = load_detection_set(files_of(tmp_path), tmp_path / "work")
    assert sorted(image.file_name for image in data.images) == ["empty.png", "good.png"]
    left_out = [item["error"] for item in data.skipped if item["file"] == "pixels.png"]
    assert len(left_out) == 1 and "left out of training" in left_out[0]


def test_a_tiff_of_several_pages_is_trained_on_by_its_first_page_and_the_result_says_so(tmp_path):
    """The classifier's training said so; the detector's used the first page without a word."""
    root = with_a_scan(shape_detection_set(tmp_path / "set", count=6))
    dataset = load_detection_set(files_of(root), tmp_path / "work")
    result = train_and_save(dataset, Params(model_name="scans", preset=TINY, steps=1, eval_every=1), tmp_path / "run")
    assert [note.split(" Save")[0] for note in result.notes] == [f"images/shapes_000.tiff: {FIRST_PAGE_NOTE}"]
