"""A shared instance: each user's jobs are private, work is bounded, old jobs are purged."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tasks import client, embedded
from tasks.client import JobNotFound, QueueFull, Status
from tasks.store import finish_job, get_store
from tests.conftest import REPO


@pytest.fixture(scope="module", autouse=True)
def worker():
    embedded.ensure_started()


def test_one_user_cannot_see_open_cancel_or_fetch_another_users_job(metal_plate_images):
    job = client.wait(client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"},
                                    metal_plate_images[:1], owner="alice").id, timeout=60)
    assert job.status is Status.SUCCEEDED and job.owner == "alice"
    with pytest.raises(JobNotFound):
        client.get(job.id, owner="bob")
    with pytest.raises(JobNotFound):
        client.cancel(job.id, owner="bob")
    with pytest.raises(JobNotFound):
        client.artifact_path(job.id, "scores.json", owner="bob")
    assert job.id not in [j.id for j in client.list_jobs(owner="bob")]
    assert job.id in [j.id for j in client.list_jobs(owner="alice")]
    assert client.artifact_path(job.id, "scores.json", owner="alice").is_file()
    assert client.get(job.id).id == job.id  # a local app without sign-in (owner None) sees everything


def test_queue_limits_refuse_with_busy_and_store_nothing(metal_plate_images, monkeypatch):
    store = get_store()
    waiting = store.create("anomaly", {}, {}, owner="carol")  # queued, never sent to a worker
    try:
        before = len(store.list(limit=None))
        monkeypatch.setenv("FEWSHOT_MAX_ACTIVE_JOBS_PER_USER", "1")
        with pytest.raises(QueueFull, match="you already have 1 jobs waiting or running"):
            client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"}, metal_plate_images[:1],
                          owner="carol")
        active = sum(not j.status.final for j in store.list(limit=None))
        monkeypatch.setenv("FEWSHOT_MAX_ACTIVE_JOBS", str(active))
        with pytest.raises(QueueFull, match=r"Busy: .* Try again in a few minutes"):
            client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"}, metal_plate_images[:1],
                          owner="dave")
        assert len(store.list(limit=None)) == before
    finally:
        finish_job(store, waiting.id, Status.CANCELLED, "test over")


def test_concurrent_submissions_cannot_go_past_the_per_user_limit(metal_plate_images, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(client.app, "send_task", lambda *args, **kwargs: None)  # jobs stay queued
    monkeypatch.setenv("FEWSHOT_MAX_ACTIVE_JOBS_PER_USER", "3")

    def attempt(_: int) -> str:
        try:
            return client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"},
                                 metal_plate_images[:1], owner="erin").id
        except QueueFull:
            return "busy"

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(attempt, range(12)))
    accepted = [outcome for outcome in outcomes if outcome != "busy"]
    try:
        assert len(accepted) == 3 and outcomes.count("busy") == 9
    finally:
        for job_id in accepted:
            finish_job(get_store(), job_id, Status.CANCELLED, "test over")


def test_total_upload_per_job_is_bounded(metal_plate_images, monkeypatch):
    monkeypatch.setenv("FEWSHOT_MAX_JOB_UPLOAD_MB", "0")
    with pytest.raises(ValueError, match="at most 0 MB per job"):
        client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"}, metal_plate_images[:2])


def test_the_input_files_one_user_keeps_are_bounded(metal_plate_images, monkeypatch):
    """One upload reused by many jobs, each cancelled at once, must not fill the disk: a finished job keeps its
    inputs until retention deletes it, so they count against their owner."""
    store = get_store()
    kept = store.create("anomaly", {}, {"images": [(p.name, p) for p in metal_plate_images[:5]]}, owner="frank")
    finish_job(store, kept.id, Status.CANCELLED, "Cancelled before it started")
    monkeypatch.setattr(client.app, "send_task", lambda *args, **kwargs: None)  # jobs stay queued
    monkeypatch.setenv("FEWSHOT_MAX_USER_STORAGE_MB", "1")
    before = len(store.list(limit=None))
    with pytest.raises(ValueError, match=r"You keep 1 MB on this server .* this job adds 0 MB; at most 1 MB are kept "
                                         r"per user \(FEWSHOT_MAX_USER_STORAGE_MB\)\. Finished jobs are deleted 30"):
        client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"}, metal_plate_images[:1],
                      owner="frank")
    assert len(store.list(limit=None)) == before
    other = client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"}, metal_plate_images[:1],
                          owner="gina")  # another user's room is their own
    finish_job(store, other.id, Status.CANCELLED, "test over")


def test_saved_reference_sets_count_toward_what_one_user_keeps(metal_plate_images, monkeypatch):
    """One upload named 2,000 times in a reference set is 2,000 files on disk: the same bound refuses it."""
    from tasks import reference_sets

    monkeypatch.setenv("FEWSHOT_MAX_USER_STORAGE_MB", "1")
    one = [(metal_plate_images[0].name, metal_plate_images[0])]
    reference_sets.save("small", one, "plate", owner="hank")
    with pytest.raises(ValueError, match=r"You keep 0 MB on this server .* this reference set adds 1 MB; at most 1 MB"):
        reference_sets.save("big", one * 5, "plate", owner="hank")
    assert [s["name"] for s in reference_sets.list_sets(owner="hank")] == ["small"]
    assert [p.name for p in reference_sets.SETS.home("hank").iterdir()] == ["small"]  # nothing half-saved left
    job_files = metal_plate_images[1:4]
    job_bytes = sum(p.stat().st_size for p in job_files)
    assert job_bytes < 2**20 < job_bytes + metal_plate_images[0].stat().st_size  # only the set makes it too much
    with pytest.raises(ValueError, match=r"You keep 0 MB .* this job adds 1 MB"):
        client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"}, job_files, owner="hank")


def test_a_reference_set_has_a_bounded_number_of_images(metal_plate_images, monkeypatch):
    """Saving decodes every image in the web process: one small upload named 2,000 times must not hold it."""
    from tasks import reference_sets

    monkeypatch.setenv("FEWSHOT_MAX_REFERENCE_IMAGES", "2")
    with pytest.raises(ValueError, match=r"^This reference set: more than 2 images; at most 2 are accepted "
                                         r"\(FEWSHOT_MAX_REFERENCE_IMAGES\)\.$"):
        reference_sets.save("many", [(metal_plate_images[0].name, metal_plate_images[0])] * 3, "plate", owner="ivy")
    assert reference_sets.list_sets(owner="ivy") == []


def test_oversized_parameters_are_refused_before_anything_is_stored(metal_plate_images):
    """Every job list reads every record: a 5 MB object name must not be stored in one."""
    before = len(get_store().list(limit=None))
    with pytest.raises(ValueError, match=r"take 5,000,\d+ bytes, most of them object_name; at most 1,048,576 are "
                                         r"accepted \(FEWSHOT_MAX_PARAMS_KB\)"):
        client.submit("anomaly", {"object_name": "p" * 5_000_000, "preset": "winclip-tiny"}, metal_plate_images[:1],
                      owner="frank")
    assert len(get_store().list(limit=None)) == before


def test_retention_purges_old_finished_jobs_only(metal_plate_images):
    store = get_store()
    old_done = store.create("anomaly", {}, {"images": [(p.name, p) for p in metal_plate_images[:1]]})
    finish_job(store, old_done.id, Status.SUCCEEDED, "Done")
    old_queued = store.create("anomaly", {}, {})
    recent = store.create("anomaly", {}, {})
    finish_job(store, recent.id, Status.FAILED, "Failed")
    long_ago = time.time() - 40 * 86400

    def age(job):
        job.created_at = long_ago
        if job.finished_at:
            job.finished_at = long_ago

    store.update(old_done.id, age)
    store.update(old_queued.id, age)
    done = subprocess.run([sys.executable, "-m", "tasks", "purge", "--days", "30"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    removed = json.loads(done.stdout)["removed"]
    assert old_done.id in removed and not store.job_dir(old_done.id).exists()
    assert old_queued.id not in removed and recent.id not in removed  # unfinished or recent: kept
    finish_job(store, old_queued.id, Status.CANCELLED, "test over")
