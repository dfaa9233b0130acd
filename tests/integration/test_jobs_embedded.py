"""The job system in embedded mode: real Celery worker processes started by this (web) process, on the
file-system broker under the artifact store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.errors import UserInputError
from tasks import client, embedded
from tasks.client import Status
from tasks.runner import run_job
from tasks.store import get_store
from tests.helpers import mvtec_subset, noise_images, wait_until
from webapp.views import cancelling


@pytest.fixture(scope="module", autouse=True)
def worker():
    embedded.ensure_started()
    yield


def test_anomaly_job_end_to_end(metal_plate_images):
    files = metal_plate_images[:2]
    job = client.submit("anomaly", {"object_name": "metal plate", "preset": "winclip-tiny"}, files)
    assert job.status is Status.QUEUED
    job = client.wait(job.id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    assert job.progress == 1.0 and job.started_at <= job.finished_at and job.attempts == 1
    first = job.result["images"][0]
    assert first["file"] == files[0].name and 0.0 <= first["score"] <= 1.0
    with Image.open(client.artifact_path(job.id, first["map"])) as heat_map, Image.open(files[0]) as source:
        assert heat_map.size == source.size and heat_map.mode.startswith("I")
        assert np.asarray(heat_map).max() / 65535 == pytest.approx(first["map_max"], abs=1e-4)
    with Image.open(client.artifact_path(job.id, first["overlay"])) as overlay:
        assert overlay.size == source.size and overlay.mode == "RGB"
    scores = json.loads(client.artifact_path(job.id, "scores.json").read_text())
    assert scores == job.result and scores["random_weights"] is True


def test_corrupt_image_fails_with_a_message_and_the_worker_keeps_serving(tmp_path, metal_plate_images):
    broken = tmp_path / "broken.png"
    broken.write_bytes(metal_plate_images[0].read_bytes()[:2000])
    earlier = client.wait(client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"},
                                        metal_plate_images[:1]).id, timeout=60)
    failed = client.wait(client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"},
                                       [broken]).id, timeout=60)
    assert failed.status is Status.FAILED
    assert "broken.png: the image is corrupt or truncated" in failed.error and "accepted formats" in failed.error
    assert "Traceback" not in failed.error
    after = client.wait(client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"},
                                      metal_plate_images[:1]).id, timeout=60)
    assert after.status is Status.SUCCEEDED
    assert client.get(earlier.id).status is Status.SUCCEEDED  # stored results untouched
    assert client.artifact_path(earlier.id, "scores.json").is_file()


def test_a_job_that_runs_out_of_gpu_memory_fails_with_advice_and_the_worker_keeps_serving(monkeypatch,
                                                                                         metal_plate_images):
    import torch

    from engine.anomaly import inspection

    real = inspection.inspect_images
    calls = []

    def exhausts_memory_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 12.00 GiB")
        return real(*args, **kwargs)

    # Jobs run in worker processes, out of reach of monkeypatch: run the same runner here, on real records.
    from tasks.tools import run_contract

    monkeypatch.setattr(inspection, "inspect_images", exhausts_memory_once)
    store = get_store()
    params = {"object_name": "plate", "preset": "winclip-tiny"}
    files = {"images": [(metal_plate_images[0].name, metal_plate_images[0])]}
    failed = store.create("anomaly", params, files)
    run_job(failed.id, run_contract)
    failed = client.get(failed.id)
    assert failed.status is Status.FAILED and "ran out of memory" in failed.error
    assert "Tried to allocate 12.00 GiB" in failed.error and "The worker keeps serving" in failed.error
    assert all(store.input_path(failed.id, stored).is_file() for stored in failed.inputs)
    after = store.create("anomaly", params, files)
    run_job(after.id, run_contract)
    after = client.get(after.id)
    assert after.status is Status.SUCCEEDED, after.error  # same process, models loaded again


def test_bad_parameters_fail_the_job_with_what_is_accepted(metal_plate_images):
    job = client.wait(client.submit("anomaly", {"object_name": "", "preset": "winclip-tiny"},
                                    metal_plate_images[:1]).id, timeout=60)
    assert job.status is Status.FAILED and "object name is empty" in job.error


def test_a_model_whose_weights_are_missing_offline_is_refused_at_submit_with_the_fix(metal_plate_images):
    """A job with it failed at once (its record kept); nothing is stored now."""
    before = len(client.list_jobs(limit=10_000))
    with pytest.raises(UserInputError, match=r"winclip-vit-b-16-plus-240.*not installed.*winclip-tiny.*make weights"):
        client.submit("anomaly", {"object_name": "plate", "preset": "winclip-vit-b-16-plus-240"},
                      metal_plate_images[:1])
    assert len(client.list_jobs(limit=10_000)) == before


def test_an_unknown_model_is_refused_at_submit_with_the_anomaly_models(metal_plate_images):
    with pytest.raises(UserInputError, match=r"preset: 'winclip-giant' is not an anomaly model; accepted: "
                                             r"winclip-vit-b-16-plus-240, .*musc-tiny"):
        client.submit("anomaly", {"object_name": "plate", "preset": "winclip-giant"}, metal_plate_images[:1])


def test_a_mixed_batch_keeps_the_good_images_and_lists_the_bad(tmp_path, metal_plate_images):
    bad = tmp_path / "readme.png"
    bad.write_text("not an image")
    job = client.wait(client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"},
                                    [metal_plate_images[0], bad]).id, timeout=60)
    assert job.status is Status.SUCCEEDED
    assert [item["file"] for item in job.result["images"]] == [metal_plate_images[0].name]
    assert job.result["skipped"][0]["file"] == "readme.png"


def test_cancel_a_running_job(tmp_path):
    images = noise_images(tmp_path / "many", 150)
    job = client.submit("anomaly", {"object_name": "noise", "preset": "winclip-tiny"}, images)
    wait_until(lambda: client.get(job.id).status is Status.RUNNING and client.get(job.id).progress > 0.05,
               timeout=60, what="the job to run")
    said = list(cancelling()(job.id))  # the tab's Cancel says where the job stands until it has stopped
    assert "Cancelling" in said[0] and "Cancelled" in said[-1], said
    job = client.get(job.id)
    assert job.status is Status.CANCELLED and job.progress < 1.0
    assert "scores.json" not in job.outputs
    follow_up = client.wait(client.submit("anomaly", {"object_name": "x", "preset": "winclip-tiny"},
                                          images[:1]).id, timeout=60)
    assert follow_up.status is Status.SUCCEEDED


def test_cancel_a_queued_job_it_never_runs(tmp_path):
    images = noise_images(tmp_path / "busy", 60)
    busy = client.submit("anomaly", {"object_name": "noise", "preset": "winclip-tiny"}, images)
    queued = client.submit("anomaly", {"object_name": "noise", "preset": "winclip-tiny"}, images[:1])
    assert client.cancel(queued.id).status is Status.CANCELLED
    client.wait(busy.id, timeout=120)
    queued = client.wait(queued.id, timeout=30)
    assert queued.status is Status.CANCELLED and queued.started_at is None


def test_jobs_left_unfinished_by_a_previous_process_are_run_after_a_restart(metal_plate_images):
    # A record as a crashed app would leave it: stored and queued, but its message lost with the process.
    store = get_store()
    orphan = store.create("anomaly", {"object_name": "plate", "preset": "winclip-tiny"},
                          {"images": [(metal_plate_images[0].name, metal_plate_images[0])]})
    assert orphan.id in embedded.requeue_unfinished()
    assert client.wait(orphan.id, timeout=60).status is Status.SUCCEEDED


def test_a_job_of_a_kind_this_version_no_longer_has_fails_at_a_restart_instead_of_waiting_forever(tmp_path):
    """Left queued by an older version (a renamed tool): it would count against its owner's queue limit for good."""
    (tmp_path / "clip.mp4").write_bytes(b"")
    gone = get_store().create("insertion_anchor", {"anchor_frame": 0}, {"video": [("clip.mp4", tmp_path / "clip.mp4")]},
                              owner="olivia")
    assert gone.id not in embedded.requeue_unfinished()
    failed = client.get(gone.id)
    assert failed.status is Status.FAILED and "runs no 'insertion_anchor' jobs" in failed.error
    assert gone.id not in [job.id for job in get_store().active()]


def test_unknown_job_ids_and_outputs(metal_plate_images):
    with pytest.raises(client.JobNotFound):
        client.get("0" * 32)
    with pytest.raises(client.JobNotFound):
        client.get("../../etc/passwd")
    with pytest.raises(ValueError, match="Unknown tool"):
        client.submit("teleport", {}, [])
    done = client.wait(client.submit("anomaly", {"object_name": "p", "preset": "winclip-tiny"},
                                     metal_plate_images[:1]).id, timeout=60)
    with pytest.raises(client.JobNotFound, match="no output"):
        client.artifact_path(done.id, "../job.json")


def test_winclip_plus_job_with_good_references(tmp_path, shared_data):
    tile = shared_data / "anomaly" / "magnetic_tile"
    tests = sorted((tile / "test").glob("*/*.png"))[:2]
    goods = sorted((tile / "train" / "good").glob("*.png"))[:3]
    broken = tmp_path / "broken_ref.png"
    broken.write_text("not an image")
    job = client.wait(client.submit("anomaly", {"object_name": "magnetic tile", "preset": "winclip-tiny"},
                                    {"images": tests, "references": [*goods, broken]}).id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    assert job.result["mode"] == "WinCLIP+ (3 good references)"
    assert job.result["skipped"] == [{"file": "broken_ref.png", "role": "reference",
                                      "error": job.result["skipped"][0]["error"]}]
    zero_shot = client.wait(client.submit("anomaly", {"object_name": "magnetic tile", "preset": "winclip-tiny"},
                                          tests).id, timeout=120)
    assert zero_shot.result["mode"] == "WinCLIP (zero-shot)"
    assert [r["score"] for r in zero_shot.result["images"]] != [r["score"] for r in job.result["images"]]


def test_references_that_all_fail_say_so(tmp_path, metal_plate_images):
    broken = tmp_path / "ref.png"
    broken.write_text("nope")
    job = client.wait(client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"},
                                    {"images": metal_plate_images[:1], "references": [broken]}).id, timeout=60)
    assert job.status is Status.FAILED
    assert job.error.startswith("None of the reference images of good parts could be used. ref.png: not an image")


def zip_folder(folder, archive):
    import zipfile

    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return archive


def test_evaluation_job_on_a_zipped_mvtec_set(tmp_path, shared_data):
    tiles = mvtec_subset(shared_data / "anomaly" / "magnetic_tile", tmp_path / "magnetic_tile", per_folder=2)
    archive = zip_folder(tiles, tmp_path / "magnetic_tile.zip")
    job = client.submit("anomaly_evaluate", {"object_name": "magnetic tile", "preset": "winclip-tiny", "shots": 1},
                        {"dataset": [archive]})
    job = client.wait(job.id, timeout=300)
    assert job.status is Status.SUCCEEDED, job.error
    metrics = job.result["metrics"]
    assert set(metrics["per_defect_type"]) == {"blowhole", "break", "crack", "fray", "uneven"}
    assert metrics["num_images"] == 12 and 0.0 <= metrics["pro"] <= 1.0
    assert sorted(job.outputs) == ["metrics.json", "roc.png", "scores.csv"]
    assert not (get_store().job_dir(job.id) / "work").exists()  # extracted copy removed, zip kept


def test_evaluation_job_refuses_a_zip_slip_archive(tmp_path):
    import zipfile

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../../outside.png", b"x")
    job = client.wait(client.submit("anomaly_evaluate", {"object_name": "x", "preset": "winclip-tiny"},
                                    {"dataset": [archive]}).id, timeout=60)
    assert job.status is Status.FAILED and "points outside the archive" in job.error
    assert not (get_store().root / "outside.png").exists()


def test_video_job_scores_frames_and_writes_the_overlay_video(tmp_path, metal_plate_images):
    from tests.helpers import moving_square_video

    moving_square_video(tmp_path / "line.webm", frames=15, size=(64, 48), fps=10)
    job = client.submit("anomaly_video", {"object_name": "plate", "preset": "winclip-tiny", "fps": 2,
                                          "threshold": "calibrate"},
                        {"video": [tmp_path / "line.webm"], "references": metal_plate_images[:3]})
    job = client.wait(job.id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    assert [f["frame"] for f in job.result["frames"]] == [0, 5, 10]
    assert job.result["threshold"]["source"] == "calibrated" and len(job.result["threshold"]["good_scores"]) == 3
    assert client.artifact_path(job.id, "overlay.mp4").stat().st_size > 0
    assert job.message == "Done" and "Scored frame" not in job.message


def test_a_video_job_with_a_second_video_is_refused_at_submit_and_nothing_stored(tmp_path):
    """Its job failed at once (keeping the uploads for nothing)."""
    from tests.helpers import moving_square_video

    moving_square_video(tmp_path / "a.mp4", frames=3)
    before = len(client.list_jobs(limit=10_000))
    with pytest.raises(UserInputError, match=r"exactly one video \(mp4, webm, mov, avi or mkv\) per job; 2 given"):
        client.submit("anomaly_video", {"object_name": "plate", "preset": "winclip-tiny"},
                      {"video": [tmp_path / "a.mp4", tmp_path / "a.mp4"]})
    assert len(client.list_jobs(limit=10_000)) == before


def test_zip_batch_job_and_a_saved_reference_set(tmp_path, metal_plate_images):
    import zipfile

    from tasks import reference_sets

    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in metal_plate_images[:2]:
            bundle.write(path, f"{path.parent.name}_{path.name}")
        bundle.writestr("../../evil.png", b"x")
    reference_sets.save("plates-embedded", [(p.name, p) for p in metal_plate_images[2:4]], "metal plate")
    job = client.wait(client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny",
                                                "reference_set": "plates-embedded"}, [archive]).id, timeout=120)
    # The traversal entry refuses the whole zip, with the reason; nothing was extracted outside.
    assert job.status is Status.FAILED and "points outside the archive" in job.error
    assert not (tmp_path.parent / "evil.png").exists()
    clean = tmp_path / "clean.zip"
    with zipfile.ZipFile(clean, "w") as bundle:
        for path in metal_plate_images[:2]:
            bundle.write(path, f"{path.parent.name}_{path.name}")
    job = client.wait(client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny",
                                                "reference_set": "plates-embedded"}, [clean]).id, timeout=120)
    assert job.status is Status.SUCCEEDED, job.error
    assert len(job.result["images"]) == 2 and job.result["threshold"]["source"] == "calibrated"
    assert "from set 'plates-embedded'" in job.result["mode"]
    reference_sets.delete("plates-embedded")  # the job kept its own copies
    assert all(get_store().input_path(job.id, s).is_file() for s in job.inputs if s.startswith("references/"))
    with pytest.raises(ValueError, match="No reference set named 'plates-embedded'"):
        client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny",
                                  "reference_set": "plates-embedded"}, [clean])
