"""Object insertion through the launched app's API (gradio_client): image, video, bad input, Jobs tab."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from tasks import client
from tests.helpers import moving_square_video, noise_images

SIZE = (96, 72)
SAMPLING = ["insert", "insertion-tiny", 3]  # mode, preset, seed
STEPS = [2, 7.5, 1.0]  # steps, guidance, strength


@pytest.fixture(scope="module")
def api(app_url) -> Client:
    return Client(app_url, verbose=False)


def test_insertion_image_with_a_painted_layer_gives_one_result_per_seed(api, tmp_path):
    image = noise_images(tmp_path, 1, size=(96, 72))[0]
    layer = Image.new("RGBA", (96, 72), (0, 0, 0, 0))
    layer.paste((255, 0, 255, 255), (30, 20, 70, 50))
    layer.save(tmp_path / "layer.png")
    status, gallery, downloads = api.predict(handle_file(str(image)), [handle_file(str(tmp_path / "layer.png"))],
                                             "", "a red ball", "", *SAMPLING, 2, *STEPS, api_name="/insert_image")
    assert "Succeeded" in status, status
    assert [item["caption"] for item in gallery] == ["seed 3", "seed 4"]
    assert sorted(p.rsplit("/", 1)[-1] for p in downloads) == ["mask.png", "result_seed3.png", "result_seed4.png",
                                                               "summary.json"]
    result = np.asarray(Image.open(gallery[0]["image"]).convert("RGB"))
    outside = np.ones((72, 96), dtype=bool)
    outside[20:50, 30:70] = False
    assert np.array_equal(result[outside], np.asarray(Image.open(image).convert("RGB"))[outside])


def test_insertion_video_with_a_box_returns_an_mp4_and_the_anchor(api, tmp_path):
    moving_square_video(tmp_path / "clip.mp4", frames=3, size=SIZE)
    status, video, anchor, downloads = api.predict(
        handle_file(str(tmp_path / "clip.mp4")), None, [], 0, "same", "20,10,60,50", "",
        None, "a red ball", "", *SAMPLING, *STEPS, api_name="/insert_video")
    assert "Succeeded" in status, status
    assert video.endswith("result.mp4") and anchor.endswith(".png")
    assert sorted(p.rsplit("/", 1)[-1] for p in downloads) == ["anchor.png", "anchor_mask.png", "result.mp4",
                                                               "result_lossless.mkv", "summary.json"]


def test_insertion_bad_input_shows_a_message_and_nothing_is_lost(api, tmp_path):
    image = noise_images(tmp_path, 1, size=(64, 48))[0]
    picture = handle_file(str(image))
    before = len(client.list_jobs(10_000))
    with pytest.raises(Exception, match="Mark the region in the image: draw over it, upload a mask, or give a box"):
        api.predict(picture, [], "", "a cat " * 30, "", *SAMPLING, 1, *STEPS, api_name="/insert_image")
    assert len(client.list_jobs(10_000)) == before  # refused at submit; its job used to fail
    status, gallery, _ = api.predict(picture, [], "1,1,30,30", "a cat " * 30, "", *SAMPLING, 1, *STEPS,
                                     api_name="/insert_image")
    assert "Succeeded" in status and "it was cut after" in status and len(gallery) == 1
    with pytest.raises(Exception, match="Upload an image"):
        api.predict(None, [], "1,1,5,5", "a cat", "", *SAMPLING, 1, *STEPS, api_name="/insert_image")
    moving_square_video(tmp_path / "one.mkv", frames=1, size=SIZE, lossless=True)
    status, video, _, _ = api.predict(handle_file(str(tmp_path / "one.mkv")), None, [], 0,
                                      "same", "1,1,20,20", "", None, "a cat", "", *SAMPLING, *STEPS,
                                      api_name="/insert_video")
    assert "Failed" in status and "single frame" in status and video is None


def test_a_box_past_the_picture_or_a_model_not_installed_is_refused_with_nothing_stored(api, tmp_path):
    """Both jobs failed at once, each leaving a failed record."""
    image = noise_images(tmp_path, 1, size=(64, 48))[0]
    picture = handle_file(str(image))
    before = len(client.list_jobs(10_000))
    with pytest.raises(Exception, match=r"500,500,600,600 is not a box\. .* inside the 64×48 image"):
        api.predict(picture, [], "500,500,600,600", "a cat", "", *SAMPLING, 1, *STEPS, api_name="/insert_image")
    with pytest.raises(Exception, match=r"\(insertion-sd15-controlnet-inpaint\) are not installed.*insertion-tiny"):
        api.predict(picture, [], "1,1,30,30", "a cat", "", "insert", "insertion-sd15-controlnet-inpaint", 3, 1,
                    *STEPS, api_name="/insert_image")
    assert len(client.list_jobs(10_000)) == before


def test_a_photo_as_the_picture_is_taken_and_a_truncated_one_refused_by_name(api, tmp_path):
    """A JPEG (the tab's own sample) failed inside Gradio's editor ("cannot write mode RGBA") and a truncated PNG
    with "image file is truncated", both with the upload's server path."""
    desk = Path(__file__).resolve().parents[2] / "assets" / "insertion" / "desk.jpg"
    status, gallery, _ = api.predict(handle_file(str(desk)), [], "10,10,60,60", "a red ball", "", *SAMPLING, 1,
                                     *STEPS, api_name="/insert_image")
    assert "Succeeded" in status, status
    assert Image.open(gallery[0]["image"]).size == Image.open(desk).size
    whole = (noise_images(tmp_path, 1, size=(96, 72))[0]).read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(Exception) as refused:
        api.predict(handle_file(str(tmp_path / "cut.png")), [], "1,1,30,30", "a red ball", "", *SAMPLING, 1, *STEPS,
                    api_name="/insert_image")
    said = str(refused.value)
    assert "cut.png: the image is corrupt or truncated" in said and "accepted formats: PNG, JPEG" in said
    assert "/tmp" not in said and "preprocess" not in said


def test_insertion_jobs_open_in_the_jobs_tab(api, tmp_path):
    image = noise_images(tmp_path, 1, size=(64, 48))[0]
    api.predict(handle_file(str(image)), [], "5,5,40,40", "a cat", "", *SAMPLING, 1, *STEPS, api_name="/insert_image")
    job = client.list_jobs(1)[0]
    assert job.tool == "insertion"
    details, gallery, table, files = api.predict(job.id, api_name="/open_job")
    assert "Succeeded" in details and gallery[0]["caption"] == "seed 3"
    assert table["headers"] == ["input", "seed", "output", "size"] and files
