"""Annotation completion through the embedded Celery worker, with the tiny preset on DeepPCB images."""

from __future__ import annotations

import json
import zipfile

import pytest

from engine.annotations.read import read_dataset
from engine.completion import review
from engine.completion.outputs import PROPOSALS_FILE, ids_above
from engine.errors import UserInputError
from tasks import client, embedded
from tasks.client import Status


def read_proposals(job_id: str) -> dict:
    return review.read_proposals(client.artifact_path(job_id, PROPOSALS_FILE))


@pytest.fixture(scope="module", autouse=True)
def worker():
    embedded.ensure_started()
    yield


@pytest.fixture(scope="module")
def deeppcb(shared_data):
    root = shared_data / "detection" / "deeppcb"
    return root, json.loads((root / "annotations.json").read_text())


def subset(deeppcb, tmp_path, count: int = 3, keep_every: int = 2):
    """The first `count` images and a COCO file that keeps every `keep_every`-th of their boxes."""
    root, coco = deeppcb
    images = coco["images"][:count]
    ids = {image["id"] for image in images}
    annotations = [a for a in coco["annotations"] if a["image_id"] in ids]
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"images": images, "categories": coco["categories"],
                                "annotations": annotations[::keep_every]}))
    return [root / "images" / image["file_name"] for image in images], path, len(annotations[::keep_every])


def test_completion_job_proposes_reviews_and_exports(deeppcb, tmp_path):
    images, annotations, kept = subset(deeppcb, tmp_path)
    job = client.submit("completion", {"preset": "completion-tiny", "score_threshold": 0.5, "max_per_image": 20},
                        {"images": images, "annotations": [annotations]})
    job = client.wait(job.id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    result = job.result
    assert result["images"] == 3 and result["existing_boxes"] == kept == result["exemplars"]
    assert result["random_weights"] is True and result["skipped"] == []
    assert {"proposals.json", "completed_coco.json", "completed_yolo.zip", "completed_voc.zip"} <= set(job.outputs)
    document = read_proposals(job.id)
    assert [item["file"] for item in document["images"]] == [p.name for p in images]
    first = document["images"][0]
    assert first["preview"] in job.outputs and first["preview_scale"] == 1.0
    assert all(set(p) == {"id", "box", "category", "score", "exemplar"} for p in first["proposals"])
    assert len(ids_above(document, 0.5)) == result["proposals_above_threshold"]

    completed = json.loads(client.artifact_path(job.id, "completed_coco.json").read_text())
    assert len(completed["annotations"]) == kept + result["proposals_above_threshold"]

    accepted = [p["id"] for p in first["proposals"][:2]]
    paths = client.add_outputs(job.id, lambda out_dir: review.save_review(
        out_dir, document, accepted, rejected=[first["proposals"][2]["id"]]))
    assert review.read_review(client.artifact_path(job.id, review.REVIEW_FILE)) == {
        "accepted": sorted(accepted), "rejected": [first["proposals"][2]["id"]], "edited": {}, "added": []}
    outputs = set(client.get(job.id).outputs)
    assert {"review.json", "accepted_coco.json", "accepted_yolo.zip", "accepted_voc.zip"} <= outputs
    for archive in paths[1:]:  # every export imports again with the same boxes: existing + the 2 accepted
        files = [(p.name, p) for p in images]
        if archive.suffix == ".zip":
            target = tmp_path / archive.stem
            zipfile.ZipFile(archive).extractall(target)
            files += [(str(p.relative_to(target)), p) for p in target.rglob("*") if p.is_file()]
        else:
            files.append((archive.name, archive))
        assert read_dataset(files).box_count == kept + 2, archive.name


def test_evaluation_job_reports_recall_and_precision(deeppcb, tmp_path):
    images, annotations, _ = subset(deeppcb, tmp_path, count=4, keep_every=1)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for image in images:
            bundle.write(image, f"deeppcb/images/{image.name}")
        bundle.write(annotations, "deeppcb/annotations.json")
    job = client.wait(client.submit("completion_evaluate", {"preset": "completion-tiny", "drop_fraction": "0.5",
                                                            "seed": "1"}, {"images": [archive]}).id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    report = job.result
    overall = report["metrics"]["overall"]
    assert report["hidden"] == overall["hidden"] == round(0.5 * report["boxes"])
    assert set(report["metrics"]["per_class"]) <= {c["name"] for c in deeppcb[1]["categories"]}
    assert overall["recall"] is not None and 0.0 <= overall["recall"] <= 1.0
    assert [point["score_threshold"] for point in report["curve"]][:2] == [0.05, 0.1]
    assert json.loads(client.artifact_path(job.id, "metrics.json").read_text())["metrics"] == report["metrics"]


@pytest.mark.parametrize(("params", "files", "expected"), [
    ({"preset": "completion-tiny"}, "no-boxes", "No annotated boxes to learn from"),
    ({"preset": "winclip-tiny"}, "ok", "is not an annotation-completion model"),
    ({"preset": "completion-owlv2-base"}, "ok", "make weights"),
    ({"preset": "completion-tiny", "score_threshold": "high"}, "ok", "score_threshold: a number"),
    ({"preset": "completion-tiny", "drawn_boxes": "[{"}, "ok", "drawn_boxes is not valid JSON"),
])
def test_bad_requests_fail_with_what_to_do(deeppcb, tmp_path, params, files, expected):
    images, annotations, _ = subset(deeppcb, tmp_path, count=1)
    inputs = {"images": images} if files == "no-boxes" else {"images": images, "annotations": [annotations]}
    try:
        job = client.wait(client.submit("completion", params, inputs).id, timeout=60)
    except UserInputError as exc:  # a bad parameter is refused at submit, before anything is stored
        error = str(exc)
    else:
        assert job.status is Status.FAILED
        error = job.error
    assert expected in error and "Traceback" not in error


def test_the_drawing_canvas_shows_a_videos_first_frame_decoded_by_a_worker(tmp_path):
    """The web process decodes no video: a file that crashes the decoder takes down a worker, not the app."""
    import gradio as gr
    import numpy as np
    from PIL import Image

    from engine.video import iter_frames
    from tests.helpers import moving_square_video
    from webapp.completion_tab import drawing_background

    moving_square_video(tmp_path / "clip.mkv", frames=3, size=(96, 72), lossless=True)
    drawn = [{"image": "frame_000000_0.00s.png", "box": [10, 20, 20, 20], "category": "block"}]
    shown = drawing_background("frame_000000_0.00s.png", [], str(tmp_path / "clip.mkv"), drawn)
    first = next(iter(iter_frames(tmp_path / "clip.mkv"))).image
    assert np.array_equal(np.asarray(Image.open(shown["image"])), np.asarray(first))
    assert [(b["xmin"], b["ymin"], b["xmax"], b["ymax"], b["label"]) for b in shown["boxes"]] == [
        (10, 20, 30, 40, "block")]
    assert client.list_jobs(limit=1)[0].tool == "video_frame"  # decoded by a job
    (tmp_path / "fake.mp4").write_text("no video at all, from " + str(tmp_path))
    with pytest.raises(gr.Error) as refused:
        drawing_background("frame_000000_0.00s.png", [], str(tmp_path / "fake.mp4"), [])
    assert "fake.mp4" in refused.value.message and str(tmp_path) not in refused.value.message


def test_drawn_boxes_on_one_video_frame_complete_the_others(tmp_path):
    import numpy as np

    from engine.video import VideoWriter

    video = tmp_path / "clip.mp4"
    with VideoWriter(video, fps=10) as writer:
        for index in range(12):
            frame = np.full((96, 128, 3), 40, np.uint8)
            frame[20:40, 10 + 5 * index : 30 + 5 * index] = 220
            writer.write(frame)
    drawn = [{"image": "frame_000000_0.00s.png", "box": [10, 20, 20, 20], "category": "block"}]
    job = client.wait(client.submit("completion", {"preset": "completion-tiny", "video_stride": 4,
                                                   "drawn_boxes": json.dumps(drawn)}, {"video": [video]}).id,
                      timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    document = read_proposals(job.id)
    assert [item["file"] for item in document["images"]] == ["frame_000000_0.00s.png", "frame_000004_0.40s.png",
                                                              "frame_000008_0.80s.png"]
    assert document["images"][0]["existing"] == [{"box": [10.0, 20.0, 20.0, 20.0], "category": "block"}]
    assert document["categories"] == ["block"] and document["exemplars"][0]["image"] == "frame_000000_0.00s.png"
    assert all(p["category"] == "block" for item in document["images"] for p in item["proposals"])
