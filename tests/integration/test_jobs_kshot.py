"""K-shot evaluation jobs through the embedded Celery worker: a classifier's from named class uploads, the job's
progress says the seed, a cancel during a later seed cancels the job, bad parameters are refused at submit."""

from __future__ import annotations

import pytest
import torch

from engine.errors import UserInputError
from tasks import client, embedded
from tasks.client import Status
from tests.helpers import colour_classes, wait_until

torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a shared CPU
TRAINING = {"preset": "finetune-clip-tiny", "method": "linear", "eval_every": 5, "patience": 10000}


@pytest.fixture(scope="module", autouse=True)
def worker():
    embedded.ensure_started()
    yield


@pytest.fixture(scope="module")
def classes(tmp_path_factory) -> dict[str, list]:
    """The colour classes as the Classifier sub-tab's rows send them: class names and a role per class."""
    root = colour_classes(tmp_path_factory.mktemp("colours"))
    return {f"class_{k:03d}": sorted((root / name).glob("*.png")) for k, name in enumerate(("red", "green", "blue"))}


def test_kshot_job_of_named_class_uploads(classes):
    params = {"shots": 2, "seeds": "0, 1", "training": {**TRAINING, "steps": 5, "class_names": ["red", "green",
                                                                                                "blue"]}}
    job = client.wait(client.submit("finetune_kshot", params, classes).id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    assert job.params["seeds"] == [0, 1] and job.params["training"]["steps"] == 5
    assert job.result["classes"] == ["red", "green", "blue"] and [r["seed"] for r in job.result["runs"]] == [0, 1]
    assert set(job.result["summary"]) == {"zero_shot_accuracy", "fine_tuned_accuracy"}
    assert job.outputs == ["kshot.json", "kshot.csv"] and client.artifact_path(job.id, "kshot.csv").is_file()


def test_a_cancel_during_the_second_seed_cancels_the_job(classes):
    params = {"shots": 2, "seeds": [0, 1], "training": {**TRAINING, "steps": 100_000, "time_budget_s": 2,
                                                        "class_names": ["red", "green", "blue"]}}
    job = client.submit("finetune_kshot", params, classes)
    wait_until(lambda: client.get(job.id).message.startswith("Seed 2 of 2 · Step"), 90, "the second seed")
    client.cancel(job.id)
    job = client.wait(job.id, timeout=60)
    assert job.status is Status.CANCELLED and "runs" not in (job.result or {}), job.error


@pytest.mark.parametrize(("params", "expected"), [
    ({"shots": 0}, "shots: a whole number from 1 to 1000"),
    ({"seeds": [3, 3]}, "each seed once"),
    ({"task": "detect", "training": {"steps": -1}}, "Training settings: steps"),
])
def test_bad_parameters_are_refused_at_submit(params, expected):
    with pytest.raises(UserInputError, match=expected):
        client.submit("finetune_kshot", params, {})
