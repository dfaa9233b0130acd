"""The Use a model status line: how many boxes a detector kept, and what to change when it kept none."""

from __future__ import annotations

from tasks.jobs import Job, Status
from webapp.finetune_tab import prediction_line


def detection(boxes_per_image: list[int]) -> Job:
    predictions = [{"file": f"{i}.png", "boxes": [{"category": "nut", "score": 0.6, "box": [0, 0, 1, 1]}] * n}
                   for i, n in enumerate(boxes_per_image)]
    return Job(id="f" * 32, tool="finetune_predict", params={}, status=Status.SUCCEEDED,
               result={"task": "detect", "predictions": predictions, "score_threshold": 0.5})


def test_no_box_kept_says_so_and_what_to_change() -> None:
    line = prediction_line(detection([0, 0]))
    assert "**0** boxes on 2 image(s) at score ≥ 0.5: lower *Lowest box score*" in line


def test_boxes_kept_are_counted_and_a_classifier_gets_the_plain_status() -> None:
    assert "**3** boxes on 2 image(s) at score ≥ 0.5" in prediction_line(detection([1, 2]))
    assert "**1** box on 1 image(s)" in prediction_line(detection([1]))
    classified = Job(id="f" * 32, tool="finetune_predict", params={}, status=Status.SUCCEEDED,
                     result={"task": "classify", "predictions": []})
    assert "box" not in prediction_line(classified)


def test_a_prediction_says_which_images_were_used_only_in_part() -> None:
    """A TIFF of several pages is classified (or searched for boxes) by its first page: the status says so."""
    note = "scan.tiff: a TIFF of 3 pages; only the first was used."
    for task in ("classify", "detect"):
        job = Job(id="f" * 32, tool="finetune_predict", params={}, status=Status.SUCCEEDED,
                  result={"task": task, "predictions": [], "score_threshold": 0.5, "notes": [note]})
        assert prediction_line(job).endswith(f"\n\n⚠️ {note}")
