"""The launched app through gradio_client: the same endpoints the page calls."""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file

from tasks import client
from tests.helpers import kolektor_zip


@pytest.fixture(scope="module")
def api(app_url) -> Client:
    return Client(app_url, verbose=False)


def test_anomaly_tab_returns_a_heat_map_for_a_real_image(api, shared_data):
    image = next((shared_data / "anomaly" / "magnetic_tile" / "test").glob("*/*.png"))
    status, gallery, table, video, _, downloads = api.predict(
        [handle_file(str(image))], None, "magnetic tile", "winclip-tiny", api_name="/anomaly"
    )
    assert "Succeeded" in status and "Threshold **0.5000** (default" in status
    score, verdict = table["data"][0][1], table["data"][0][2]
    assert len(gallery) == 1 and gallery[0]["caption"] == f"{image.name} · {score:.4f} · {verdict}"
    assert table["data"][0][0] == image.name and 0.0 <= score <= 1.0 and verdict == ("NG" if score > 0.5 else "OK")
    assert video is None
    assert sorted(p.rsplit("/", 1)[-1] for p in downloads) == ["000_" + image.stem + "_map.png", "scores.csv",
                                                                "scores.json"]


def test_a_zip_batch_with_a_set_threshold_lists_bad_entries(api, metal_plate_images, tmp_path):
    import zipfile

    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for index, path in enumerate(metal_plate_images[:2]):
            bundle.write(path, f"parts/{index}_{path.name}")
        bundle.writestr("parts/readme.txt", "not an image")
    status, gallery, table, *_ = api.predict(
        [handle_file(str(archive))], None, "metal plate", "winclip-tiny", "Set it myself", 0.0, None,
        api_name="/anomaly")
    assert "Succeeded" in status and "Threshold **0.0000** (user" in status and "2 NG, 0 OK" in status
    rows = table["data"]
    assert [r[0] for r in rows] == [f"batch.zip/parts/{i}_{p.name}" for i, p in enumerate(metal_plate_images[:2])] + [
        "batch.zip/parts/readme.txt"]
    assert [r[2] for r in rows] == ["NG", "NG", "skipped"] and "not an accepted file type" in rows[2][3]
    assert len(gallery) == 2


def test_a_video_gives_an_overlay_video_a_timeline_and_flagged_frames(api, tmp_path):
    from tests.helpers import moving_square_video

    moving_square_video(tmp_path / "belt.mp4", frames=12, size=(80, 60), fps=10)
    status, gallery, table, video, plot, downloads = api.predict(
        handle_file(str(tmp_path / "belt.mp4")), None, "metal plate", "winclip-tiny", "Every Nth frame", 3,
        "Set it myself", 0.0, None, api_name="/anomaly_video")
    assert "Succeeded" in status and "4 NG, 0 OK" in status
    assert [r[0] for r in table["data"]] == [f"frame {i:06d} ({i / 10:.2f} s)" for i in (0, 3, 6, 9)]
    assert len(gallery) == 4 and video.endswith("overlay.mp4")
    assert plot["visible"] and plot["value"]["columns"] == ["time (s)", "score", "series"]
    points = plot["value"]["data"]
    assert [p[0] for p in points if p[2] == "score"] == [0.0, 0.3, 0.6, 0.9]
    assert [p[1] for p in points if p[2] == "threshold"] == [0.0, 0.0]
    assert {"overlay.mp4", "timeline.png", "scores.csv", "scores.json"} <= {d.rsplit("/", 1)[-1] for d in downloads}


def test_a_broken_video_fails_with_a_message(api, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(300))
    status, *_ = api.predict(handle_file(str(broken)), None, "plate", "winclip-tiny", api_name="/anomaly_video")
    assert "Failed" in status and "broken.mp4" in status and "Traceback" not in status


def test_a_saved_reference_set_is_reused_and_calibrates(api, shared_data):
    tile = shared_data / "anomaly" / "magnetic_tile"
    goods = [handle_file(str(p)) for p in sorted((tile / "train" / "good").glob("*.png"))[:3]]
    message, dropdown = api.predict("tiles-line-3", goods, "magnetic tile", api_name="/save_reference_set")
    assert "Saved reference set **tiles-line-3** (3 images)" in message
    assert dropdown["value"] == "tiles-line-3" and "tiles-line-3" in [c[1] for c in dropdown["choices"]]
    with pytest.raises(Exception, match="already exists"):
        api.predict("tiles-line-3", goods, "magnetic tile", api_name="/save_reference_set")
    test_image = next((tile / "test").glob("*/*.png"))
    status, *_ = api.predict([handle_file(str(test_image))], None, "magnetic tile", "winclip-tiny",
                             "Calibrate from the good parts", 0.5, "tiles-line-3", api_name="/anomaly")
    assert "Succeeded" in status and "(calibrated" in status
    job = client.list_jobs(1)[0]
    assert job.result["mode"] == "WinCLIP+ (3 good references from set 'tiles-line-3')"
    assert sum(stored.startswith("references/") for stored in job.inputs) == 3


def test_real_preset_offline_is_refused_with_the_missing_weights_fix(api, metal_plate_images):
    """Its job failed at once, leaving a failed record; the run is refused now, with nothing stored."""
    before = len(client.list_jobs(10_000))
    with pytest.raises(Exception, match=r"winclip-vit-b-16-plus-240\) are not installed.*pick the demo model .*"
                                        r"\(winclip-tiny\).*make weights"):
        api.predict([handle_file(str(metal_plate_images[0]))], None, "metal plate", "winclip-vit-b-16-plus-240",
                    api_name="/anomaly")
    assert len(client.list_jobs(10_000)) == before


def test_a_file_that_is_not_an_image_gets_a_clear_message(api, tmp_path):
    fake = tmp_path / "scan.png"
    fake.write_bytes(b"%PDF-1.7 definitely not a png")
    status, *_ = api.predict([handle_file(str(fake))], None, "plate", "winclip-tiny", api_name="/anomaly")
    assert "Failed" in status and "scan.png: not an image in an accepted format" in status
    assert "Traceback" not in status


def test_no_upload_is_refused_before_a_job_is_made(api):
    before = len(client.list_jobs(1000))
    with pytest.raises(Exception, match="Upload at least one image"):
        api.predict(None, None, "plate", "winclip-tiny", api_name="/anomaly")
    assert len(client.list_jobs(1000)) == before


def test_jobs_endpoints_list_open_and_cancel(api, metal_plate_images):
    api.predict([handle_file(str(metal_plate_images[0]))], None, "plate", "winclip-tiny", api_name="/anomaly")
    rows = api.predict(api_name="/list_jobs")["data"]
    newest = rows[0]
    assert newest[1] == "anomaly" and newest[2] == "succeeded"
    details, gallery, _, files = api.predict(newest[0], api_name="/open_job")
    assert "Succeeded" in details and len(gallery) == 1 and files
    assert "No job" in api.predict("f" * 32, api_name="/open_job")[0]
    assert "Succeeded" in api.predict(newest[0], api_name="/cancel_job")  # a finished job stays finished


def test_good_part_references_switch_on_winclip_plus(api, shared_data):
    tile = shared_data / "anomaly" / "magnetic_tile"
    test_image = next((tile / "test").glob("*/*.png"))
    references = [handle_file(str(p)) for p in sorted((tile / "train" / "good").glob("*.png"))[:2]]
    status, gallery, *_ = api.predict(
        [handle_file(str(test_image))], references, "magnetic tile", "winclip-tiny", api_name="/anomaly"
    )
    assert "Succeeded" in status and len(gallery) == 1
    job = client.list_jobs(1)[0]
    assert job.result["mode"] == "WinCLIP+ (2 good references)"
    assert job.result["threshold"]["source"] == "calibrated"
    assert sum(stored.startswith("references/") for stored in job.inputs) == 2


def test_the_model_named_decides_the_method(api, metal_plate_images):
    # the Method radio's default is WinCLIP; a call that names a MuSc model without a method still runs MuSc
    status, gallery, *_ = api.predict([handle_file(str(p)) for p in metal_plate_images[:5]], None, "plate",
                                      "musc-tiny", api_name="/anomaly")
    assert "Succeeded" in status and "MuSc (zero-shot over the set)" in status and len(gallery) == 5


def test_evaluate_a_zipped_labelled_set(api, shared_data, tmp_path):
    archive = kolektor_zip(shared_data, tmp_path)
    status, roc, _comparison, metrics, files = api.predict(  # one method: the comparison table stays hidden
        handle_file(str(archive)), "commutator", 0, "winclip-tiny", api_name="/evaluate_anomaly"
    )
    assert "Succeeded" in status and len(roc) == 1
    assert metrics["headers"][:3] == ["set", "image AUROC", "pixel AUROC"]
    assert metrics["data"][0][0] == "all" and 0.0 <= metrics["data"][0][1] <= 1.0
    assert sorted(f.rsplit("/", 1)[-1] for f in files) == ["metrics.json", "roc.png", "scores.csv"]


def test_evaluate_without_a_zip_is_refused(api):
    with pytest.raises(Exception, match=r"Upload a \.zip"):
        api.predict(None, "x", 0, "winclip-tiny", api_name="/evaluate_anomaly")


def test_a_wrong_type_gets_a_short_message_and_an_unexpected_error_no_internals(api, metal_plate_images):
    """Gradio answered a value it could not convert with the whole payload and the converter's error, and any
    unexpected exception with its own text ("'dict' object has no attribute 'strip'", or a server path)."""
    from webapp.request_errors import UNEXPECTED

    with pytest.raises(Exception) as wrong_type:
        api.predict([handle_file(str(metal_plate_images[0]))], None, "metal plate", "winclip-tiny", "Set it myself",
                    "abc", api_name="/anomaly")
    message = str(wrong_type.value)
    assert "was not accepted, expected a `float`, got a `str`" in message and "Original error" not in message
    with pytest.raises(Exception) as unexpected:
        api.predict({"a": 1}, api_name="/finetune_download")
    assert UNEXPECTED in str(unexpected.value) and "strip" not in str(unexpected.value)
