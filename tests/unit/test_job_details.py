"""The Jobs tab's details line: each parameter by its label; a K-shot job's training settings summed up as its
training job labels them (the changed ones), a completion's drawn boxes by class and image, never nested records."""

from __future__ import annotations

from tasks.jobs import Job, Status
from tasks.registry import contract
from webapp import anomaly_tab, finetune_tab, insertion_tab, jobs_tab


def kshot_job(task: str, training: dict) -> Job:
    settings = contract(finetune_tab.TRAINING_TOOLS[task]).Params.from_dict(training).to_dict()
    return Job("a" * 32, "finetune_kshot", {"task": task, "shots": 2, "seeds": [0, 1], "training": settings},
               status=Status.RUNNING)


def details(job: Job) -> str:
    return jobs_tab.job_views(job)[0]


def test_kshot_training_shows_the_changed_settings_by_label_not_the_record():
    line = details(kshot_job("classify", {"preset": "finetune-clip-tiny", "method": "linear", "steps": 5,
                                          "model_name": "sample parts", "seed": 3}))
    assert ("Training = the classifier's defaults but Base model: finetune-clip-tiny, Method: linear, Steps: 5 ·"
            in line)
    assert "{" not in line and "lora_rank" not in line
    assert "sample parts" not in line and "Seed:" not in line  # not used: no model is saved, each sample has a seed


def test_kshot_detector_training_at_defaults_says_so():
    line = details(kshot_job("detect", {}))
    assert "Training = the detector's defaults ·" in line


def test_other_jobs_keep_every_parameter_by_label():
    job = Job("b" * 32, "finetune_classify", {"preset": "finetune-clip-tiny", "steps": 5}, status=Status.RUNNING)
    assert "Base model = finetune-clip-tiny, Steps = 5 ·" in details(job)


def test_drawn_boxes_read_as_classes_on_images():
    boxes = [{"image": "board 1.png", "category": "capacitor", "box": [1, 2, 3, 4]},
             {"image": "board 2.png", "category": "resistor", "box": [5, 6, 7, 8]}]
    line = details(Job("c" * 32, "completion", {"drawn_boxes": boxes, "max_per_image": 100}, status=Status.RUNNING))
    assert "Drawn boxes = capacitor on board 1.png, resistor on board 2.png, Most proposals per image = 100" in line
    assert "Drawn boxes = none" in details(Job("d" * 32, "completion", {"drawn_boxes": []}, status=Status.RUNNING))


def test_an_ended_job_says_what_its_own_tab_says_under_its_status():
    training = Job("e" * 32, "finetune_classify", {"preset": "finetune-clip-tiny"}, status=Status.SUCCEEDED,
                   result={"name": "parts", "classes": ["bolt", "nut"], "train_images": 8, "held_out_images": 4,
                           "stopped": "cancelled", "steps_run": 12, "best_step": 10})
    line = details(training)
    assert "stopped: cancelled after 12 steps (best step 10)" in line  # a cancel keeps the best checkpoint: said
    inspection = Job("f" * 32, "anomaly", {"object_name": "plate"}, status=Status.SUCCEEDED,
                     result={"threshold": {"image": 0.42, "pixel": 0.5, "source": "calibrated on 3 good parts"},
                             "counts": {"NG": 1, "OK": 2}, "warnings": ["b.png: no parts"]})
    assert "Threshold **0.4200** (calibrated on 3 good parts; outline above 0.5000) · 1 NG, 2 OK" in details(inspection)
    assert "⚠️ b.png: no parts" in details(inspection)



NOTE = "scan.tiff: a TIFF of 3 pages; only the first was used."


def test_a_kshot_run_and_a_completion_say_which_images_were_used_only_in_part():
    """Their status lines (in their tabs and here) end with the notes, as a training's and a prediction's do."""
    kshot = Job("c" * 32, "finetune_kshot", {"task": "classify"}, status=Status.SUCCEEDED, result={
        "task": "classify", "shots": 2, "classes": ["red", "blue"], "seeds": [0], "base_preset": "finetune-clip-tiny",
        "sampling": "K images per class", "runs": [], "notes": [NOTE]})
    completion = Job("d" * 32, "completion", {}, status=Status.SUCCEEDED, result={
        "images": 3, "existing_boxes": 2, "exemplars": 2, "proposals": 4, "proposals_above_threshold": 1,
        "score_threshold": 0.3, "notes": [NOTE]})
    assert f"\n\n⚠️ {NOTE}\n\nTool `finetune_kshot`" in details(kshot)
    assert jobs_tab.STATUS_LINES["completion"](completion).endswith(f"(the job's threshold)\n\n⚠️ {NOTE}")


def test_a_jobs_results_table_is_laid_out_as_its_own_tab_lays_it_out():
    """The Jobs tab's results table gave every tool's columns shares of its width (a letter per line on a phone);
    it takes the widths the tool's own tab gives the table, and Gradio's own for a table given none."""
    def widths(tool: str) -> list[str] | None:
        return jobs_tab.job_views(Job("e" * 32, tool, {}, status=Status.RUNNING))[2].column_widths

    assert widths("anomaly") == anomaly_tab.SCORE_COLUMN_WIDTHS
    assert widths("insertion") == insertion_tab.RESULT_COLUMN_WIDTHS
    assert widths("finetune_predict") == finetune_tab.PREDICTION_COLUMN_WIDTHS
    assert widths("finetune_detect") == finetune_tab.DETECT_METRIC_COLUMN_WIDTHS
    assert not widths("finetune_classify")
