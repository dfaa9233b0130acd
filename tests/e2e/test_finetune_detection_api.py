"""The fine-tuning tab's detection endpoints on the launched app, through gradio_client: train, detect, complete
with the detector, download, upload and delete; bad input."""

from __future__ import annotations

import zipfile

import pytest
import torch
from gradio_client import Client, handle_file

from tasks import client
from tests.helpers import shape_detection_set, zip_tree

torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a shared CPU


@pytest.fixture(scope="module")
def api(app_url) -> Client:
    return Client(app_url, verbose=False)


def test_train_see_curves_and_ap_then_detect_complete_download_and_delete(api, tmp_path):
    root = shape_detection_set(tmp_path / "set", count=12)
    archive = zip_tree(root, tmp_path / "shapes.zip")
    status, loss, average_precision, metrics, downloads, _ = api.predict(
        [handle_file(str(archive))], "api shapes", "detection-tiny", 40, 0, 4, 0, 600, False,
        api_name="/finetune_detect")
    assert "Succeeded" in status and "Model **api shapes** saved" in status and "random weights" in status
    assert {row[2] for row in loss["data"]} == {"training loss", "held-out loss"}
    assert {row[2] for row in average_precision["data"]} == {"held-out mAP@0.5", "held-out mAP@[.5:.95]"}
    assert metrics["headers"][:3] == ["class", "baseline AP@0.5", "fine-tuned AP@0.5"]
    assert [row[0] for row in metrics["data"]] == ["all (mAP)", "square", "circle"]
    assert sorted(p.rsplit("/", 1)[-1] for p in downloads) == ["history.csv", "metrics.json", "model.zip"]

    images = sorted((root / "images").glob("*.png"))[:2]
    use_status, gallery, boxes, files = api.predict("api shapes", [handle_file(str(p)) for p in images], 0.0,
                                                    api_name="/finetune_detect_predict")
    assert "Succeeded" in use_status and len(gallery) == 2 and boxes["data"]
    assert {row[1] for row in boxes["data"]} <= {"square", "circle"}
    assert sorted(f.rsplit("/", 1)[-1] for f in files)[-1] == "detections.json"
    with pytest.raises(Exception, match="is a detector: press Detect boxes"):
        api.predict("api shapes", [handle_file(str(images[0]))], None, 10, 1.0, api_name="/finetune_predict")

    jobs = {job.tool: job for job in reversed(client.list_jobs(50)) if job.params.get("model_name") == "api shapes"
            or job.params.get("model") == "api shapes"}
    _, _, table, _ = api.predict(jobs["finetune_detect"].id, api_name="/open_job")
    table = table.get("value", table)  # the Jobs tab sends a table update with this tool's headers
    assert table["headers"][1] == "baseline AP@0.5" and table["data"][0][0] == "all (mAP)"
    _, gallery, table, _ = api.predict(jobs["finetune_predict"].id, api_name="/open_job")
    table = table.get("value", table)
    assert table["headers"][3] == "box x, y, width, height" and len(gallery) == 2

    status, *_ = api.predict([handle_file(str(p)) for p in images], None, None, 30, "detector:api shapes", 0.3, False,
                             api_name="/completion")
    assert "Succeeded" in status and "fine-tuned detector **api shapes**" in status

    model_file = api.predict("api shapes", api_name="/finetune_download")
    message, _ = api.predict("api shapes copy", handle_file(model_file), api_name="/finetune_upload")
    assert "Uploaded model **api shapes copy** (square, circle)" in message
    message, _ = api.predict("api shapes copy", api_name="/finetune_delete")
    assert "Deleted model **api shapes copy**" in message
    junk = tmp_path / "junk.zip"
    with zipfile.ZipFile(junk, "w") as bundle:
        bundle.writestr("readme.txt", "not a model")
    with pytest.raises(Exception, match="not a model file downloaded from this tool"):
        api.predict("junk", handle_file(str(junk)), api_name="/finetune_upload")


def test_images_without_annotations_fail_with_a_message(api, tmp_path):
    root = shape_detection_set(tmp_path / "set", count=2)
    archive = zip_tree(root, tmp_path / "plain.zip", suffixes=(".png",))
    status, *_ = api.predict([handle_file(str(archive))], "no boxes", "detection-tiny", 5, 0, 4, 0, 60, False,
                             api_name="/finetune_detect")
    assert "Failed" in status and "No annotated boxes" in status
