"""Fine-tuning jobs through the embedded Celery worker: train with live curves, use, cancel, bad input."""

from __future__ import annotations

import zipfile

import pytest
import torch

from tasks import client, embedded, finetune_models
from tasks.client import Status
from tests.helpers import colour_classes, wait_until

torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a shared CPU


@pytest.fixture(scope="module", autouse=True)
def worker():
    embedded.ensure_started()
    yield


@pytest.fixture(scope="module")
def colour_zip(tmp_path_factory):
    root = colour_classes(tmp_path_factory.mktemp("colours"))
    archive = root / "colours.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(root.rglob("*.png")):
            bundle.write(path, f"colours/{path.relative_to(root)}")
    return archive


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
    again = client.wait(client.submit("finetune_classify", params, {"dataset": [colour_zip]}).id, timeout=60)
    assert again.status is Status.FAILED and "already exists" in again.error
    exported = finetune_models.export_zip("colours job", tmp_path)
    finetune_models.import_zip("colours copy", exported)
    assert finetune_models.get("colours copy")["classes"] == meta["classes"]
    finetune_models.delete("colours copy")
    assert "colours copy" not in [m["name"] for m in finetune_models.list_models()]


def test_cancel_during_training_keeps_the_best_checkpoint(colour_zip):
    params = {"model_name": "cancelled run", "preset": "finetune-clip-tiny", "steps": 5000, "eval_every": 5,
              "patience": 10000}
    job = client.submit("finetune_classify", params, {"dataset": [colour_zip]})
    wait_until(lambda: len(client.get(job.id).live.get("history", [])) > 12, 60, "training steps")
    client.cancel(job.id)
    job = client.wait(job.id, timeout=60)
    assert job.status is Status.SUCCEEDED and job.result["stopped"] == "cancelled"
    assert job.result["steps_run"] < 5000 and job.result["best_step"] <= job.result["steps_run"]
    assert finetune_models.get("cancelled run")["stopped"] == "cancelled"


@pytest.mark.parametrize(("params", "expected"), [
    ({"model_name": "../x", "preset": "finetune-clip-tiny"}, "Model name '../x' is not accepted"),
    ({"model_name": "one", "preset": "finetune-clip-tiny", "class_names": ["ok"]}, "at least two classes"),
    ({"model_name": "lr", "preset": "finetune-clip-tiny", "learning_rate": "fast"}, "Training settings"),
])
def test_bad_requests_fail_with_a_message(colour_zip, params, expected):
    files = {"class_000": sorted(colour_zip.parent.glob("red/*.png"))} if "class_names" in params else {}
    job = client.wait(client.submit("finetune_classify", params, files).id, timeout=60)
    assert job.status is Status.FAILED and expected in job.error and "Traceback" not in job.error
