"""Fine-tuning jobs through the embedded Celery worker: train a classifier or a detector with live curves, use
it (classify, detect, complete annotations with the detector), export and import it, cancel, bad input."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

from engine.errors import UserInputError
from tasks import client, embedded, finetune_models
from tasks.client import Status
from tests.helpers import colour_classes, shape_detection_set, wait_until, zip_tree

torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a shared CPU


@pytest.fixture(scope="module", autouse=True)
def worker():
    embedded.ensure_started()
    yield


@pytest.fixture(scope="module")
def colour_zip(tmp_path_factory):
    root = colour_classes(tmp_path_factory.mktemp("colours"))
    return zip_tree(root, root / "colours.zip", "colours")


def test_train_stream_curves_register_the_model_and_use_it(colour_zip, tmp_path):
    params = {"model_name": "colours job", "preset": "finetune-clip-tiny", "steps": 30, "eval_every": 5}
    job = client.wait(client.submit("finetune_classify", params, {"dataset": [colour_zip]}).id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    metrics = job.result["metrics"]
    assert metrics["fine_tuned"]["accuracy"] > metrics["zero_shot"]["accuracy"] + 0.4
    assert job.live["history"][0]["step"] == 0 and len(job.result["history"]) == 31
    assert sorted(job.outputs) == ["history.csv", "metrics.json", "model.zip"]
    meta = finetune_models.get("colours job")
    assert meta["classes"] == ["blue", "green", "red"] and meta["base_preset"] == "finetune-clip-tiny"
    red = sorted(colour_zip.parent.glob("red/*.png"))[:2]
    used = client.wait(client.submit("finetune_predict", {"model": "colours job", "alpha": 1.0},
                                     {"images": red}).id, timeout=60)
    assert used.status is Status.SUCCEEDED, used.error
    assert [p["class"] for p in used.result["predictions"]] == ["red", "red"]
    assert used.outputs[:2] == ["predictions.json", "predictions.csv"] and len(used.outputs) == 4  # + thumbnails
    assert [p["image"] for p in used.result["predictions"]] == used.outputs[2:]
    with pytest.raises(UserInputError, match="already exists"):  # refused when submitted: no job is stored
        client.submit("finetune_classify", params, {"dataset": [colour_zip]})
    exported = finetune_models.export_zip("colours job", tmp_path)
    finetune_models.import_zip("colours copy", exported)
    assert finetune_models.get("colours copy")["classes"] == meta["classes"]
    finetune_models.delete("colours copy")
    assert "colours copy" not in [m["name"] for m in finetune_models.list_models()]


@pytest.mark.parametrize(("tool", "preset", "data"), [("finetune_classify", "finetune-clip-tiny", "colour_zip"),
                                                     ("finetune_detect", "detection-tiny", "shapes_zip")])
def test_cancel_during_training_keeps_the_best_checkpoint(request, tool, preset, data):
    params = {"model_name": f"cancelled {tool}", "preset": preset, "steps": 5000, "eval_every": 5, "patience": 10000}
    job = client.submit(tool, params, {"dataset": [request.getfixturevalue(data)]})
    wait_until(lambda: len(client.get(job.id).live.get("history", [])) > 12, 60, "training steps")
    client.cancel(job.id)
    job = client.wait(job.id, timeout=60)
    assert job.status is Status.SUCCEEDED and job.result["stopped"] == "cancelled"
    assert job.result["steps_run"] < 5000 and job.result["best_step"] <= job.result["steps_run"]
    assert finetune_models.get(f"cancelled {tool}")["stopped"] == "cancelled"


def refusal(tool: str, params: dict, files: dict) -> str:
    """The message a bad request ends with: refused at submit (parameters are checked there), or its failed job's."""
    try:
        job = client.wait(client.submit(tool, params, files).id, timeout=60)
    except UserInputError as exc:
        return str(exc)
    assert job.status is Status.FAILED
    return job.error


@pytest.mark.parametrize(("params", "expected"), [
    ({"model_name": "../x", "preset": "finetune-clip-tiny"}, "Model name '../x' is not accepted"),
    ({"model_name": "one", "preset": "finetune-clip-tiny", "class_names": ["ok"]}, "at least two classes"),
    ({"model_name": "lr", "preset": "finetune-clip-tiny", "learning_rate": "fast"}, "Training settings"),
])
def test_bad_requests_fail_with_a_message(colour_zip, params, expected):
    files = {"class_000": sorted(colour_zip.parent.glob("red/*.png"))} if "class_names" in params else {}
    error = refusal("finetune_classify", params, files)
    assert expected in error and "Traceback" not in error


def test_a_zip_whose_class_folders_are_unclear_fails_with_the_folders_found(colour_zip, tmp_path):
    """'red/' beside 'red/dark/': is dark a class of its own, or part of red? The job says, and trains nothing."""
    archive = tmp_path / "unclear.zip"
    with zipfile.ZipFile(colour_zip) as source, zipfile.ZipFile(archive, "w") as bundle:
        for entry in source.namelist():
            bundle.writestr(entry, source.read(entry))
            if "/red/" in f"/{entry}":
                bundle.writestr(entry.replace("red/", "red/dark/"), source.read(entry))
    error = refusal("finetune_classify", {"model_name": "unclear", "preset": "finetune-clip-tiny"},
                    {"dataset": [archive]})
    assert error.startswith("The class folders of unclear.zip are unclear: 'colours/red/' holds images and so do "
                            "folders inside it. Folders with images (images): 'colours/blue/' (")
    assert "Use one folder per class, all at the same level" in error and "Traceback" not in error
    assert "unclear" not in {model["name"] for model in finetune_models.list_models()}


@pytest.fixture(scope="module")
def shapes_zip(tmp_path_factory):
    root = shape_detection_set(tmp_path_factory.mktemp("shapes"), count=12)
    return zip_tree(root, root / "shapes.zip", "shapes")


def test_train_stream_curves_detect_complete_and_move_the_model(shapes_zip, tmp_path):
    params = {"model_name": "shapes job", "preset": "detection-tiny", "steps": 30, "eval_every": 10}
    job = client.wait(client.submit("finetune_detect", params, {"dataset": [shapes_zip]}).id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    metrics = job.result["metrics"]
    assert metrics["baseline"]["map_50"] is not None and metrics["fine_tuned"]["map_50"] is not None
    assert job.live["history"][0]["step"] == 0 and len(job.result["history"]) == 31
    assert sorted(job.outputs) == ["history.csv", "metrics.json", "model.zip"]
    meta = finetune_models.get("shapes job")
    assert meta["task"] == "detect" and meta["classes"] == ["square", "circle"]
    assert meta["base_preset"] == "detection-tiny"
    images = sorted(shapes_zip.parent.glob("images/*.png"))[:2]
    used = client.wait(client.submit("finetune_predict", {"model": "shapes job", "score_threshold": 0.0},
                                     {"images": images}).id, timeout=60)
    assert used.status is Status.SUCCEEDED, used.error
    assert [p["file"] for p in used.result["predictions"]] == [p.name for p in images]
    assert used.outputs[:2] == ["detections.json", "detections.csv"] and len(used.outputs) == 4
    with pytest.raises(UserInputError, match="'shapes job' is a detector: give it images"):  # its job failed at once
        client.submit("finetune_predict", {"model": "shapes job"}, {"video": [images[0]]})
    completed = client.wait(client.submit("completion", {"detector_model": "shapes job", "score_threshold": 0.0},
                                          {"images": [shapes_zip]}).id, timeout=60)
    assert completed.status is Status.SUCCEEDED, completed.error
    assert completed.result["detector"] == "shapes job" and completed.result["exemplars"] == 2
    exported = finetune_models.export_zip("shapes job", tmp_path)
    finetune_models.import_zip("shapes copy", exported)
    assert finetune_models.get("shapes copy")["task"] == "detect"
    detectors = finetune_models.list_models("detect")
    assert {"shapes copy", "shapes job"} <= {m["name"] for m in detectors}
    assert {m["task"] for m in detectors} == {"detect"}
    finetune_models.delete("shapes copy")
    junk = tmp_path / "junk.zip"
    with zipfile.ZipFile(junk, "w") as bundle:
        bundle.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match=r"junk\.zip is not a model file downloaded from this tool"):
        finetune_models.import_zip("junk", junk)
    lying = tmp_path / "lying.zip"
    with zipfile.ZipFile(exported) as source, zipfile.ZipFile(lying, "w") as bundle:
        bundle.writestr("model.json", json.dumps({**json.loads(source.read("model.json")),
                                                  "base_preset": "finetune-clip-tiny"}))
    with pytest.raises(ValueError, match="not a detector preset"):
        finetune_models.import_zip("lying", lying)


@pytest.mark.parametrize(("params", "files", "expected"), [
    ({"model_name": "plain", "preset": "detection-tiny"}, "images", "No annotated boxes"),
    ({"model_name": "clip", "preset": "finetune-clip-tiny"}, "zip", "not a detection preset"),
    ({"model_name": "lr", "preset": "detection-tiny", "learning_rate": "fast"}, "zip", "Training settings"),
    ({"model_name": "none", "preset": "detection-tiny"}, "", "Upload annotated images"),
])
def test_bad_detector_requests_fail_with_a_message_and_save_nothing(shapes_zip, params, files, expected):
    inputs = {"images": sorted(shapes_zip.parent.glob("images/*.png"))[:2]} if files == "images" else (
        {"dataset": [shapes_zip]} if files == "zip" else {})
    error = refusal("finetune_detect", params, inputs)
    assert expected in error and "Traceback" not in error
    assert params["model_name"] not in [m["name"] for m in finetune_models.list_models()]
