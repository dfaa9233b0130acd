"""Embedded mode keeps jobs out of the web process: worker processes per lane, started and supervised by this
(test = web) process. Faults are real: pool processes and whole workers are killed with SIGKILL, as the OOM
killer or an operator would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks import client, embedded
from tasks.client import Status
from tasks.store import get_store
from tests.conftest import REPO
from tests.helpers import colour_classes, noise_images, wait_until, zip_tree
from tests.integration.conftest import a_quick_job_passes_a_long_training, kill_pool_processes

NOISE = {"object_name": "noise", "preset": "winclip-tiny"}


@pytest.fixture(scope="module", autouse=True)
def workers():
    embedded.ensure_started()


def running(job_id: str, attempt: int = 1) -> bool:
    job = client.get(job_id)
    return job.status is Status.RUNNING and job.attempts == attempt and job.progress > 0.05


def gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped by its new parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_job_that_keeps_killing_its_worker_fails_after_max_attempts_and_the_app_keeps_serving(
        tmp_path, metal_plate_images):
    crasher = client.submit("anomaly", NOISE, noise_images(tmp_path / "many", 150), owner="mallory")
    other = None
    for attempt in (1, 2):  # FEWSHOT_MAX_ATTEMPTS defaults to 2
        wait_until(lambda attempt=attempt: running(crasher.id, attempt), timeout=120, what=f"run {attempt}")
        if other is None:  # another user's job, submitted while the first one crash-loops
            other = client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"},
                                  metal_plate_images[:1], owner="alice")
        kill_pool_processes(embedded.worker_pids()["quick"])
    crasher = client.wait(crasher.id, timeout=60)
    assert crasher.status is Status.FAILED and crasher.attempts == 2
    assert "stopped twice before the job ended" in crasher.error and "smaller or fewer inputs" in crasher.error
    other = client.wait(other.id, timeout=120)
    assert other.status is Status.SUCCEEDED and other.attempts == 1, other.error
    assert other.id in [job.id for job in client.list_jobs(owner="alice")]  # the web side kept answering


def test_a_cancel_of_a_job_whose_worker_process_was_killed_ends_at_once(tmp_path):
    job = client.submit("anomaly", NOISE, noise_images(tmp_path / "many", 150))
    wait_until(lambda: running(job.id), timeout=120, what="the job to run")
    kill_pool_processes(embedded.worker_pids()["quick"])
    started = time.monotonic()
    client.cancel(job.id)
    wait_until(lambda: client.get(job.id).status.final, timeout=5, what="the cancel")
    assert client.get(job.id).status is Status.CANCELLED and time.monotonic() - started < 5


def test_a_killed_worker_is_replaced_and_its_job_runs_again(tmp_path):
    job = client.submit("anomaly", NOISE, noise_images(tmp_path / "some", 60))
    wait_until(lambda: running(job.id), timeout=120, what="the job to run")
    worker = embedded.worker_pids()["quick"]
    os.killpg(worker, signal.SIGKILL)  # the Celery parent and its pool process: the message dies with them
    wait_until(lambda: embedded.worker_pids().get("quick", worker) != worker, timeout=30, what="a new worker")
    job = client.wait(job.id, timeout=240)
    assert job.status is Status.SUCCEEDED and job.attempts == 2, job.error
    assert len(job.result["images"]) == 60


def test_a_restart_fails_a_job_left_running_for_the_last_allowed_time_instead_of_running_it_again(
        metal_plate_images):
    store = get_store()
    files = {"images": [(metal_plate_images[0].name, metal_plate_images[0])]}
    twice, once = (store.create("anomaly", {"object_name": "plate", "preset": "winclip-tiny"}, files) for _ in "ab")
    for job, attempts in ((twice, 2), (once, 1)):  # as an app killed during these runs leaves them

        def interrupted(record, attempts=attempts):
            record.status, record.attempts, record.worker = Status.RUNNING, attempts, "quick-1@embedded"

        store.update(job.id, interrupted)
    requeued = embedded.requeue_unfinished()
    assert twice.id not in requeued and once.id in requeued
    failed = client.get(twice.id)
    assert failed.status is Status.FAILED and "stopped twice before the job ended" in failed.error
    again = client.wait(once.id, timeout=120)
    assert again.status is Status.SUCCEEDED and again.attempts == 2, again.error


def test_a_quick_job_does_not_wait_behind_a_long_training(tmp_path, metal_plate_images):
    colours = colour_classes(tmp_path / "colours")
    dataset = zip_tree(colours, tmp_path / "colours.zip", "colours")
    training = client.submit("finetune_classify", {"model_name": "lanes embedded", "preset": "finetune-clip-tiny",
                                                   "steps": 5000, "eval_every": 5, "patience": 10000},
                             {"dataset": [dataset]})
    a_quick_job_passes_a_long_training(training.id, lambda: client.submit(
        "anomaly", {"object_name": "plate", "preset": "winclip-tiny"}, metal_plate_images[:1]).id)


def test_one_app_runs_the_workers_of_its_store_and_they_end_with_it_even_when_it_is_killed(
        tmp_path, metal_plate_images):
    app = """
import json, os, time
from tasks import embedded
embedded.ensure_started()
print(json.dumps([os.getpid(), *embedded.worker_pids().values()]), flush=True)
time.sleep(600)
"""
    env = {**os.environ, "FEWSHOT_ARTIFACT_DIR": str(tmp_path / "artifacts"), "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", app], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        app_pid, *pids = json.loads(process.stdout.readline())
        # A second process on the same store (the command line) starts no workers: the app's run its job.
        done = subprocess.run([sys.executable, "-m", "tasks", "submit", "anomaly", str(metal_plate_images[0]),
                               "--param=object_name=plate", "--param=preset=winclip-tiny", "--wait=120"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["worker"] == f"quick-{app_pid}@embedded"
    finally:
        process.kill()  # no atexit: the workers must notice by themselves
        process.wait(timeout=10)
    wait_until(lambda: all(gone(pid) for pid in pids), timeout=15, what="the workers to end")
