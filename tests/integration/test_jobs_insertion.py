"""Insertion jobs on the embedded worker: an image, a short generated video, bad input, cancel."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.errors import UserInputError
from tasks import client, embedded
from tasks.client import Status
from tests.helpers import moving_square_video, noise_images, wait_until

SIZE = (96, 72)
PARAMS = {"prompt": "a red ball", "preset": "insertion-tiny", "steps": 2, "seed": 5}


@pytest.fixture(scope="module", autouse=True)
def worker():
    embedded.ensure_started()


def test_image_job_with_a_drawn_layer_and_two_seeds(tmp_path):
    image = noise_images(tmp_path, 1, size=(96, 72))[0]
    layer = Image.new("RGBA", (96, 72), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (30, 20, 70, 50))
    layer.save(tmp_path / "layer.png")
    job = client.submit("insertion", {**PARAMS, "variants": 2}, {"image": [image], "mask": [tmp_path / "layer.png"]})
    job = client.wait(job.id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    assert job.outputs == ["result_seed5.png", "result_seed6.png", "mask.png", "summary.json"]
    assert [item["seed"] for item in job.result["images"]] == [5, 6] and job.result["random_weights"] is True
    mask = np.asarray(Image.open(client.artifact_path(job.id, "mask.png"))) > 0
    with Image.open(image) as source, Image.open(client.artifact_path(job.id, "result_seed5.png")) as result:
        assert np.array_equal(np.asarray(result)[~mask], np.asarray(source.convert("RGB"))[~mask])
    assert json.loads(client.artifact_path(job.id, "summary.json").read_text()) == job.result


def test_video_job_with_a_box_on_the_anchor_frame(tmp_path):
    moving_square_video(tmp_path / "clip.mkv", frames=3, size=SIZE, lossless=True)
    job = client.submit("insertion", {**PARAMS, "box": "20,10,60,50", "region_mode": "same"},
                        {"video": [tmp_path / "clip.mkv"]})
    job = client.wait(job.id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    assert job.result["frames"] == 3 and job.result["fps"] == 10
    assert "result.mp4" in job.outputs and "anchor.png" in job.outputs
    assert client.artifact_path(job.id, "result.mp4").stat().st_size > 0


def test_a_video_of_one_frame_fails_the_job_with_a_message(tmp_path):
    """Only a job decodes a video's frames; an unmarked region is refused at submit (test_submit_refusals)."""
    moving_square_video(tmp_path / "one.mkv", frames=1, size=SIZE, lossless=True)
    job = client.wait(client.submit("insertion", {**PARAMS, "box": "1,1,20,20"}, {"video": [tmp_path / "one.mkv"]}).id,
                      timeout=120)
    assert job.status is Status.FAILED and "single frame; use image insertion" in job.error
    assert "Traceback" not in job.error


def test_a_model_whose_weights_are_missing_offline_is_refused_at_submit(tmp_path):
    """A job with it failed at once (its record kept); nothing is stored now."""
    before = len(client.list_jobs(limit=10_000))
    with pytest.raises(UserInputError, match=r"insertion-sd15-controlnet-inpaint.*not installed.*insertion-tiny"):
        client.submit("insertion", {**PARAMS, "box": "1,1,20,20", "preset": "insertion-sd15-controlnet-inpaint"},
                      {"image": noise_images(tmp_path, 1, size=(64, 48))})
    assert len(client.list_jobs(limit=10_000)) == before


def test_a_bad_parameter_is_refused_at_submit_by_name(tmp_path):
    with pytest.raises(UserInputError, match="steps: a whole number from 1 to 150, not 'many'"):
        client.submit("insertion", {**PARAMS, "box": "1,1,20,20", "steps": "many"},
                      {"image": noise_images(tmp_path, 1, size=(64, 48))})


def test_cancel_stops_a_video_between_steps(tmp_path):
    moving_square_video(tmp_path / "long.mkv", frames=40, size=SIZE, lossless=True)
    job = client.submit("insertion", {**PARAMS, "box": "20,10,60,50", "steps": 20}, {"video": [tmp_path / "long.mkv"]})
    wait_until(lambda: client.get(job.id).status is Status.RUNNING and client.get(job.id).progress > 0.03,
               timeout=60, what="the video job to start denoising")
    client.cancel(job.id)
    job = client.wait(job.id, timeout=60)
    assert job.status is Status.CANCELLED and job.progress < 0.5
