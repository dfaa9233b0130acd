"""The completion tab's review on a real job: what the reviewer does in the annotator is saved to review.json at
once (moved, relabelled, deleted, drawn boxes), a reload shows it, and the export holds the boxes as left."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from engine.completion import review as reviews
from tasks import client, embedded
from tasks.client import Status
from tests.integration.test_completion_jobs import deeppcb, subset  # noqa: F401 - shared fixture
from webapp import completion_tab as tab


@pytest.fixture(scope="module", autouse=True)
def worker():
    embedded.ensure_started()
    yield


def saved(job_id: str) -> dict:
    return reviews.read_review(client.artifact_path(job_id, reviews.REVIEW_FILE))


def test_edits_in_the_annotator_are_saved_as_made_and_exported(deeppcb, tmp_path):  # noqa: F811
    images, annotations, kept = subset(deeppcb, tmp_path, count=1)
    job = client.wait(client.submit("completion", {"preset": "completion-tiny", "max_per_image": 10},
                                    {"images": images, "annotations": [annotations]}).id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    review, value, table, _, counts, page, selected = tab._outputs(tab._review(job.id), 0.0, 0)
    rows = table["data"]  # the numbers; the table shows them with 4 decimals
    assert selected == rows[0][0] and counts.startswith(f"**{len(rows)}** of {len(rows)} proposals score ≥ 0.00")
    labels = [box["label"].strip() for box in value["boxes"]]  # a label below another at its corner is padded
    assert sorted(labels) == sorted(f"#{row[0]}" + (" ◀" if row[0] == selected else "") for row in rows)
    assert labels[0] == f"#{selected} ◀"  # the selected box on top (the annotator draws its first box last)

    boxes = {int(b["label"].split()[0][1:]): dict(b) for b in value["boxes"]}
    moved, relabelled, deleted, *_ = (row[0] for row in rows)
    boxes[moved] = {**boxes[moved], "xmin": boxes[moved]["xmin"] + 20, "xmax": boxes[moved]["xmax"] + 20}
    boxes[relabelled] = {**boxes[relabelled], "label": f"#{relabelled} resistor"}
    del boxes[deleted]
    drawn = {"xmin": 10, "ymin": 62, "xmax": 40, "ymax": 102, "label": "nut"}
    out = tab.apply_edits(review, {"boxes": [drawn, *boxes.values()]}, 0.0, page, selected)
    review = out[0]
    scale = tab._fit(review["doc"]["images"][0])  # picture pixels per image pixel
    on_disk = saved(job.id)
    assert on_disk["accepted"] == sorted([moved, relabelled]) and on_disk["rejected"] == [deleted]
    assert on_disk["edited"][str(relabelled)]["category"] == "resistor"
    assert on_disk["edited"][str(moved)]["box"][0] == pytest.approx(boxes[moved]["xmin"] / scale, abs=0.1)
    top = tab._margin(review["doc"]["images"][0])  # the white band above the picture, for the labels
    assert on_disk["added"] == [{"image": images[0].name, "box": [10 / scale, (62 - top) / scale, 30 / scale,
                                                                  40 / scale], "category": "nut"}]
    assert "· **2** accepted · 1 rejected · 1 box added" in out[4]
    assert out[1] == gr.skip()  # the annotator is left as the reviewer has it (a label being typed stays open)
    again = tab.apply_edits(review, {"boxes": [drawn, *boxes.values()]}, 0.0, page, selected)
    assert again == (gr.skip(),) * 7 and saved(job.id) == on_disk  # the same picture again: nothing new

    reloaded, value, table, line, counts, _, _ = tab._outputs(tab._review(job.id), 0.0, 0)  # a reload
    rows = table["data"]
    assert {k: reloaded[k] for k in tab.DECISIONS} == on_disk and "· 1 added (nut)" in line
    assert "+1 nut" in [b["label"] for b in value["boxes"]]
    assert {row[0]: (row[1], row[3]) for row in rows}[relabelled] == ("resistor", "accepted")

    files = tab.export(reloaded)
    coco = json.loads(Path(next(f for f in files if f.endswith("_coco.json"))).read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert len(coco["annotations"]) == kept + 3
    classes = [names[a["category_id"]] for a in coco["annotations"]]
    assert classes.count("nut") == 1 and classes.count("resistor") == 1
