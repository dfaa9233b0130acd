"""A reload with a fine-tuning job in the address shows, in the job's own sub-tab, the form it was submitted with:
its files by role (copies served to its owner only, under the names the user gave), its model name (one the user
has not taken, so Train trains again), base model, method, steps and every other setting; a K-shot evaluation its K,
seeds and training settings. What the form cannot hold is left out with a warning, never shown wrong."""

from __future__ import annotations

import uuid
from pathlib import Path

import gradio as gr
import pytest

from tasks import finetune_models
from tasks.client import Status
from tasks.jobs import Job
from tasks.store import finish_job, get_store
from tests.helpers import fake_model
from tests.unit.test_form_restore import stored_job
from webapp import finetune_tab, serving

SKIP = type(gr.skip())


@pytest.fixture(scope="module")
def names() -> dict[str, list[str]]:
    """Each sub-tab's control names as the tab restores them: its form's, then K and the seeds."""
    with gr.Blocks():
        classifier, detector = finetune_tab.build_classifier(), finetune_tab.build_detection()
    return {task: [*parts[1], "shots", "seeds"] for task, parts in (("classify", classifier), ("detect", detector))}


def restored(job: Job, task: str, names: dict[str, list[str]]) -> dict[str, object]:
    return dict(zip(names[task], finetune_tab.submitted_form(job, task, names[task]), strict=True))


def owner_only(paths: list[str], owner: str) -> bool:
    return all(serving.may_read(p, owner) and not serving.may_read(p, "bob") for p in paths)


def test_a_classifier_training_restores_its_files_by_role_and_every_setting(tmp_path, names):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    params = {"model_name": "scratches v1", "preset": "finetune-clip-tiny", "method": "selective-lora",
              "lora_rank": 4, "lora_blocks": "last:2", "steps": 7, "learning_rate": 0.002, "seed": 3,
              "time_budget_s": 60.0, "sparsity": 2.5, "compare_methods": True, "class_names": ["ok part", "dent"]}
    job = stored_job(tmp_path, "finetune_classify", params,
                     {"dataset": ["parts ü.zip"], "class_000": ["ok 1.png", "ok 2.png"], "class_001": ["dent.png"],
                      "unlabeled": ["u.png"], "retention": ["other.zip"]}, owner)
    finish_job(get_store(), job.id, Status.SUCCEEDED, "done")
    finetune_models.save("scratches v1", fake_model(tmp_path / "model"), owner=owner)  # the job saved its model
    form = restored(get_store().read(job.id), "classify", names)
    files = {name: [Path(p).name for p in form[name]] for name in
             ("dataset", "class_0_images", "class_1_images", "unlabeled", "retention")}
    assert files == {"dataset": ["parts ü.zip"], "class_0_images": ["ok 1.png", "ok 2.png"],
                     "class_1_images": ["dent.png"], "unlabeled": ["u.png"], "retention": ["other.zip"]}
    assert Path(form["class_1_images"][0]).read_bytes() == b"dent.png" * 50
    assert owner_only([p for name in files for p in form[name]], owner)
    assert (form["class_0_name"], form["class_1_name"], form["class_2_name"], form["class_2_images"]) == (
        "ok part", "dent", "", None)  # an unused row is emptied
    assert form["model_name"] == "scratches v1 2"  # Train again saves a new model, not "already exists"
    assert {name: form[name] for name in ("preset", "method", "lora_rank", "lora_blocks", "steps", "learning_rate",
                                          "seed", "time_budget_s", "sparsity", "compare_methods")} == {
        name: params[name] for name in ("preset", "method", "lora_rank", "lora_blocks", "steps", "learning_rate",
                                         "seed", "time_budget_s", "sparsity", "compare_methods")}
    assert isinstance(form["shots"], SKIP) and isinstance(form["seeds"], SKIP)  # the K-shot section keeps its own
    assert all(isinstance(value, SKIP) for value in restored(job, "detect", names).values())


def test_a_detector_training_restores_its_section_and_its_name_while_it_runs(tmp_path, names):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    params = {"model_name": "screws", "preset": "detection-tiny", "steps": 12, "batch_size": 2, "seed": 5,
              "time_budget_s": 30.0, "train_backbone": True}
    job = stored_job(tmp_path, "finetune_detect", params, {"dataset": ["boxes.zip", "a.png", "a.xml"]}, owner)
    form = restored(job, "detect", names)
    assert [Path(p).name for p in form["dataset"]] == ["boxes.zip", "a.png", "a.xml"]
    assert owner_only(form["dataset"], owner)
    assert form["model_name"] == "screws 2"  # queued: it will save "screws"
    assert form["learning_rate"] is None  # empty: the base model's own
    assert [form[name] for name in ("preset", "steps", "batch_size", "seed", "time_budget_s", "train_backbone")] == [
        "detection-tiny", 12, 2, 5, 30.0, True]
    assert all(isinstance(value, SKIP) for value in restored(job, "classify", names).values())
    finish_job(get_store(), job.id, Status.FAILED, "failed", error="no boxes")  # no model saved: its name is free
    assert restored(get_store().read(job.id), "detect", names)["model_name"] == "screws"


def test_a_kshot_evaluation_restores_k_the_seeds_and_its_training_in_its_tasks_section(tmp_path, names):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    training = {"model_name": "probe", "preset": "finetune-clip-tiny", "method": "linear", "steps": 5,
                "class_names": ["a"]}
    job = stored_job(tmp_path, "finetune_kshot", {"task": "classify", "shots": 3, "seeds": [4, 7],
                                                  "training": training},
                     {"dataset": ["set.zip"], "class_000": ["a.png"]}, owner)
    form = restored(job, "classify", names)
    assert (form["shots"], form["seeds"], form["method"], form["steps"]) == (3, "4, 7", "linear", 5)
    assert [Path(p).name for p in form["dataset"]] == ["set.zip"] and form["class_0_name"] == "a"
    assert [Path(p).name for p in form["class_0_images"]] == ["a.png"]
    assert form["model_name"] == "probe"  # it saves no model
    assert finetune_tab.classes_shown(job).get_config()["open"] is True  # its folded rows opened
    assert all(isinstance(form[name], SKIP) for name in finetune_tab.NOT_IN_KSHOT)  # it did not use them
    assert all(isinstance(value, SKIP) for value in restored(job, "detect", names).values())


def test_what_the_form_cannot_hold_is_left_out_and_said(tmp_path, names):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    classes = [f"c{index}" for index in range(finetune_tab.CLASS_ROWS + 1)]
    job = stored_job(tmp_path, "finetune_classify", {"class_names": classes, "batch_size": 4, "steps": 9},
                     {"dataset": ["more.zip"], **{f"class_{i:03d}": [f"{i}.png"] for i in range(len(classes))}},
                     owner)
    with pytest.warns(UserWarning) as caught:
        form = restored(job, "classify", names)
    message = str(caught[0].message)
    assert "4 classes were given one by one" in message and "Batch size: 4" in message
    assert "Steps" not in message  # the form shows it
    assert all(isinstance(form[name], SKIP) for name in names["classify"] if name.startswith("class_"))
    assert isinstance(form["dataset"], SKIP)  # the zip alone would train other classes than the job did
    assert form["steps"] == 9
    assert isinstance(finetune_tab.classes_shown(job), SKIP)  # its rows stay folded (and empty)
