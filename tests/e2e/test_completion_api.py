"""Annotation completion through the launched app's endpoints (gradio_client), tiny preset on DeepPCB."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from tasks import client


@pytest.fixture(scope="module")
def api(app_url) -> Client:
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def partial_set(shared_data, tmp_path_factory):
    root = shared_data / "detection" / "deeppcb"
    coco = json.loads((root / "annotations.json").read_text())
    images = coco["images"][:2]
    ids = {image["id"] for image in images}
    kept = [a for a in coco["annotations"] if a["image_id"] in ids][::2]
    path = tmp_path_factory.mktemp("completion") / "partial.json"
    path.write_text(json.dumps({"images": images, "categories": coco["categories"], "annotations": kept}))
    return [root / "images" / image["file_name"] for image in images], path, len(kept)


def test_complete_filter_accept_and_export(api, partial_set, tmp_path):
    images, annotations, kept = partial_set
    status, view, table, page_line, counts, selected = api.predict(
        [handle_file(str(p)) for p in images], [handle_file(str(annotations))], None, 30, "completion-tiny", 0.5,
        False, api_name="/completion")
    assert "Succeeded" in status and "random weights" in status
    assert page_line.startswith(f"Image 1 of 2: `{images[0].name}`")
    with Image.open(view["image"]["path"] if isinstance(view["image"], dict) else view["image"]) as overlay:
        # fitted into the 1200×640 panel (this set's 640×640 images stay 640 high), with white room above and on the
        # right for the labels, at most a quarter of the width
        assert 640 <= overlay.width <= 800 and 640 < overlay.height <= 700
    assert table["headers"] == ["id", "class", "score", "status", "exemplar"] and table["data"]
    shown = len(table["data"])
    assert all(row[2] >= 0.5 and row[3] == "pending" for row in table["data"])
    # every proposal shown is an editable rectangle labelled with its id first; the best pending one is selected
    assert sorted(int(b["label"].split()[0][1:]) for b in view["boxes"]) == sorted(row[0] for row in table["data"])
    assert selected == table["data"][0][0]

    _, strict_table, _, strict_counts, _ = api.predict(0.7, None, api_name="/completion_filter")
    assert len(strict_table["data"]) <= shown and "score ≥ 0.70 · **0** accepted · 0 rejected" in strict_counts

    _, table, _, counts, _ = api.predict(0.5, api_name="/completion_accept_above")
    accepted = int(counts.split(" · **")[1].split("**")[0])
    above = int(counts.split("**")[1])
    assert counts.startswith(f"**{above}** of ") and "proposals score ≥ 0.50" in counts
    assert accepted == above > 0 and all(row[3] == "accepted" for row in table["data"])
    first = table["data"][0][0]
    _, table, _, counts, _ = api.predict(first, api_name="/completion_reject")
    assert [row[3] for row in table["data"] if row[0] == first] == ["rejected"]
    assert f"**{accepted - 1}** accepted · 1 rejected" in counts

    _, _, second_page, _, _ = api.predict(api_name="/completion_next")
    assert second_page.startswith(f"Image 2 of 2: `{images[1].name}`")

    files = api.predict(api_name="/completion_export")
    names = sorted(f.rsplit("/", 1)[-1] for f in files)
    assert names == ["accepted_coco.json", "accepted_voc.zip", "accepted_yolo.zip"]
    coco = json.loads(Path(next(f for f in files if f.endswith(".json"))).read_text())
    assert len(coco["annotations"]) == kept + accepted - 1
    with zipfile.ZipFile(next(f for f in files if f.endswith("_yolo.zip"))) as bundle:
        assert "classes.txt" in bundle.namelist()


def test_no_upload_is_refused_before_a_job_is_made(api):
    before = len(client.list_jobs(1000))
    with pytest.raises(Exception, match="Upload images"):
        api.predict(None, None, None, 30, "completion-tiny", 0.3, False, api_name="/completion")
    assert len(client.list_jobs(1000)) == before


def test_bad_annotations_are_listed_and_the_rest_completes(api, partial_set, tmp_path):
    images, annotations, _ = partial_set
    broken = tmp_path / "broken.json"
    data = json.loads(annotations.read_text())
    data["annotations"][0]["bbox"] = [600, 600, 100, 100]
    broken.write_text(json.dumps(data))
    status, *_ = api.predict([handle_file(str(p)) for p in images], [handle_file(str(broken))], None, 30,
                             "completion-tiny", 0.3, False, api_name="/completion")
    assert "Succeeded" in status and "Skipped (1)" in status and "lies outside the 640 x 640 image" in status


def test_evaluate_completion_endpoint(api, shared_data):
    root = shared_data / "detection" / "deeppcb"
    coco = json.loads((root / "annotations.json").read_text())
    names = [image["file_name"] for image in coco["images"][:3]]
    status, metrics, curve, files = api.predict(
        [handle_file(str(root / "images" / n)) for n in names], [handle_file(str(root / "annotations.json"))],
        0.3, 0, 0.3, "completion-tiny", api_name="/evaluate_completion")
    assert "Succeeded" in status and "boxes hidden" in status
    assert metrics["headers"] == ["class", "hidden", "found", "proposals", "recall", "precision"]
    assert metrics["data"][-1][0] == "all" and 0.0 <= metrics["data"][-1][4] <= 1.0
    assert len(curve["data"]) == 10 and any(f.endswith("metrics.json") for f in files)


def test_a_completion_job_opens_from_the_jobs_tab(api, partial_set):
    images, annotations, _ = partial_set
    api.predict([handle_file(str(p)) for p in images], [handle_file(str(annotations))], None, 30,
                "completion-tiny", 0.3, False, api_name="/completion")
    newest = api.predict(api_name="/list_jobs")["data"][0]
    assert newest[1] == "completion" and newest[2] == "succeeded"
    details, gallery, rows, files = api.predict(newest[0], api_name="/open_job")
    rows = rows.get("value", rows)  # the Jobs tab sends a table update with this tool's headers
    assert "Succeeded" in details and len(gallery) == 2 and rows["data"][0][0] == images[0].name
    assert rows["headers"] == ["file", "existing boxes", "proposals ≥ threshold", "best score"]
    assert any(f.endswith("proposals.json") for f in files)
