"""The hostile corpus (tests/hostile_corpus.py) through every tool's job, on the embedded worker.

Each file must end its job with a message that names it and says what was wrong (or, inside a batch
with good files, be listed as skipped while the rest is processed): never an internal error, never a
traceback, never a file written outside the artifact store, and the worker keeps serving.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tasks import client, embedded
from tasks.client import Job, Status
from tests import hostile_corpus
from tests.helpers import colour_classes

MODEL = "hostile corpus model"
INSERTION = {"prompt": "a red ball", "preset": "insertion-tiny", "steps": 2, "seed": 5}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> hostile_corpus.Corpus:
    embedded.ensure_started()
    return hostile_corpus.build(tmp_path_factory.mktemp("hostile") / "corpus")


@pytest.fixture(scope="module")
def trained_model(good) -> str:
    """A tiny classifier to feed bad files to (two steps are enough: only its input handling is tested)."""
    job = run("finetune_classify", {"model_name": MODEL, "preset": "finetune-clip-tiny", "steps": 2,
                                    "class_names": ["red", "green"]},
              {"class_000": sorted(good["class"].glob("*.png")),
               "class_001": sorted(good["other_class"].glob("*.png"))})
    assert job.status is Status.SUCCEEDED, job.error
    return MODEL


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    """Sound companions: an image, a drawn mask for it, COCO boxes for it, a class of good images."""
    root = tmp_path_factory.mktemp("good")
    pixels = np.random.default_rng(0).integers(0, 256, (72, 96, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "part.png")
    layer = Image.new("RGBA", (96, 72), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (30, 20, 70, 50))
    layer.save(root / "layer.png")
    colours = colour_classes(root / "colours", per_class=3)
    return {"image": root / "part.png", "mask": root / "layer.png", "class": colours / "red",
            "other_class": colours / "green"}


def coco_for(name: str) -> dict[str, Any]:
    return {"images": [{"id": 1, "file_name": name, "width": 96, "height": 72}],
            "categories": [{"id": 1, "name": "hole"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]}]}


def run(tool: str, params: dict[str, Any], files: dict[str, list[Path]]) -> Job:
    return client.wait(client.submit(tool, params, files).id, timeout=120)


def refusal_problem(job: Job, culprit: str) -> str | None:
    """None when the job failed with a message naming the culprit (or succeeded listing it as skipped)."""
    if job.status is Status.FAILED:
        if job.error.startswith("Internal error") or "Traceback" in job.error or culprit not in job.error:
            return job.error
        return None
    if job.status is Status.SUCCEEDED and culprit in json.dumps(job.result.get("skipped", [])):
        return None
    return f"{job.status.value}: {json.dumps(job.result)[:300]}"


def check_all(cases: list[tuple[str, str, str, dict[str, Any], dict[str, list[Path]]]]) -> None:
    """Run every (culprit, label, tool, params, files) case; report every unclear answer at once. All are submitted
    first, so that each lane's worker takes its next job at once, and the two lanes work side by side."""
    submitted = [(culprit, label, client.submit(tool, params, files).id)
                 for culprit, label, tool, params, files in cases]
    problems = []
    for culprit, label, job_id in submitted:
        problem = refusal_problem(client.wait(job_id, timeout=120), culprit)
        if problem:
            problems.append(f"{label} / {culprit}: {problem}")
    assert not problems, "\n".join(problems)


def test_bad_images_in_every_tool_that_takes_images(corpus, good, trained_model, tmp_path):
    cases = []
    for image in corpus.images:
        annotations = tmp_path / f"{image.stem}.json"
        annotations.write_text(json.dumps(coco_for(image.name)))
        name = image.name
        cases += [
            (name, "anomaly", "anomaly", {"object_name": "part", "preset": "winclip-tiny"}, {"images": [image]}),
            (name, "anomaly references", "anomaly", {"object_name": "part", "preset": "winclip-tiny"},
             {"images": [good["image"]], "references": [image]}),
            (name, "completion", "completion", {"preset": "completion-tiny"},
             {"images": [image], "annotations": [annotations]}),
            (name, "detector set", "finetune_detect", {"preset": "detection-tiny", "steps": 2, "model_name": name},
             {"images": [image], "annotations": [annotations]}),
            (name, "insertion image", "insertion", INSERTION, {"image": [image], "mask": [good["mask"]]}),
            (name, "insertion mask", "insertion", INSERTION, {"image": [good["image"]], "mask": [image]}),
            (name, "fine-tuning class", "finetune_classify",
             {"preset": "finetune-clip-tiny", "steps": 2, "class_names": ["red", "green"], "model_name": name},
             {"class_000": [image], "class_001": sorted(good["other_class"].glob("*.png"))}),
            (name, "fine-tuned model", "finetune_predict", {"model": MODEL}, {"images": [image]}),
        ]
    check_all(cases)


def test_bad_archives_in_every_tool_that_takes_zips(corpus, worker_env):
    worker_env(FEWSHOT_MAX_ZIP_BYTES=str(32 * 2**20))  # the bomb unpacks to 64 MiB
    cases = []
    for archive in corpus.archives:
        name = archive.name
        cases += [
            (name, "anomaly", "anomaly", {"object_name": "part", "preset": "winclip-tiny"}, {"images": [archive]}),
            (name, "anomaly evaluation", "anomaly_evaluate", {"object_name": "part", "preset": "winclip-tiny"},
             {"dataset": [archive]}),
            (name, "completion", "completion", {"preset": "completion-tiny"}, {"images": [archive]}),
            (name, "completion evaluation", "completion_evaluate", {"preset": "completion-tiny"},
             {"images": [archive]}),
            (name, "fine-tuning set", "finetune_classify", {"preset": "finetune-clip-tiny", "steps": 2,
                                                            "model_name": name}, {"dataset": [archive]}),
            (name, "detector set", "finetune_detect", {"preset": "detection-tiny", "steps": 2, "model_name": name},
             {"dataset": [archive]}),
        ]
    check_all(cases)
    assert not any(target.exists() for target in corpus.escape_targets)  # zip-slip wrote nothing outside


def test_bad_videos_in_every_tool_that_takes_videos(corpus, trained_model):
    cases = []
    for video in corpus.videos:
        name = video.name
        cases += [
            (name, "anomaly video", "anomaly_video", {"object_name": "part", "preset": "winclip-tiny"},
             {"video": [video]}),
            (name, "completion video", "completion", {"preset": "completion-tiny", "drawn_boxes": json.dumps(
                [{"frame": 0, "label": "hole", "box": [5, 5, 20, 20]}])}, {"video": [video]}),
            (name, "insertion video", "insertion", {**INSERTION, "box": "20,10,60,50"}, {"video": [video]}),
            (name, "fine-tuned model", "finetune_predict", {"model": MODEL}, {"video": [video]}),
        ]
    check_all(cases)


def test_malformed_annotations_in_completion_and_detector_training(corpus, good):
    check_all([case for annotations in corpus.annotations for case in (
        (annotations.name, "completion", "completion", {"preset": "completion-tiny"},
         {"images": [good["image"]], "annotations": [annotations]}),
        (annotations.name, "detector set", "finetune_detect", {"preset": "detection-tiny", "steps": 2,
                                                               "model_name": annotations.name},
         {"images": [good["image"]], "annotations": [annotations]}))])


def test_annotations_asking_for_unbounded_work_end_the_completion_job_by_name(corpus, good):
    """YAML aliases, a label of 10^6 lines, a COCO file of 10^6 boxes: bounded while read (engine/limits.py)."""
    check_all([(culprit, "completion", "completion", {"preset": "completion-tiny"},
                {"images": [good["image"]], "annotations": files}) for culprit, files in corpus.annotation_sets])


def test_uploads_over_the_limit_are_refused_before_anything_is_stored(corpus, good, trained_model, monkeypatch):
    """Each run names a model it can use (a demo one): one whose weights are missing here, or a saved model that
    does not exist, is refused first, for that."""
    from tasks.store import get_store

    before = len(get_store().list(limit=None))
    monkeypatch.setenv("FEWSHOT_MAX_JOB_UPLOAD_MB", "0")
    for tool, params, files in (
            ("anomaly", {"preset": "winclip-tiny"}, {"images": [good["image"]]}),
            ("anomaly_video", {"preset": "winclip-tiny"}, {"video": corpus.videos[:1]}),
            ("completion", {"preset": "completion-tiny"}, {"images": [good["image"]]}),
            ("insertion", {**INSERTION, "box": "1,1,5,5"}, {"image": [good["image"]]}),  # a prompt and a region
            ("finetune_classify", {"preset": "finetune-clip-tiny"}, {"dataset": corpus.archives[:1]}),
            ("finetune_predict", {"model": trained_model}, {"images": [good["image"]]})):
        with pytest.raises(ValueError, match="at most 0 MB per job"):
            client.submit(tool, params, files)
    assert len(get_store().list(limit=None)) == before
