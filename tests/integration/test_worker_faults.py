"""Worker faults against a real Redis: a killed worker process, a killed worker machine, a job that keeps
killing its worker, a job over the memory limit, and the two lanes.

The rule (README, "Reliability"): a worker *process* killed mid-job while its Celery parent lives
gets the message back at once (acks late + reject on worker lost) and the job runs again from the
start, at most FEWSHOT_MAX_ATTEMPTS times in all; a whole worker that vanishes stops its job's heartbeat,
and after FEWSHOT_HEARTBEAT_TIMEOUT the job is marked failed with a message. Files written before stay
readable either way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from tasks import client
from tasks.client import Status
from tasks.store import get_store
from tests.conftest import REPO
from tests.helpers import colour_classes, noise_images, wait_until, zip_tree
from tests.integration.conftest import (
    a_quick_job_passes_a_long_training,
    env_for,
    kill_pool_processes,
    start_worker,
    stop_processes,
)
from tests.integration.fault_tasks import ALLOCATE

pytestmark = pytest.mark.redis


def fault_env(redis_url: str, **extra: str) -> dict[str, str]:
    return env_for(redis_url, FEWSHOT_HEARTBEAT_S="0.5", **extra)


@pytest.fixture
def worker_factory(tmp_path) -> Iterator:
    started: list[subprocess.Popen] = []

    def make(redis_url: str, name: str, queue: str = "quick,long", extra_args: tuple[str, ...] = (),
             **env: str) -> subprocess.Popen:
        process = start_worker(fault_env(redis_url, **env), tmp_path / f"{name}.log", f"fault-worker-{name}", queue,
                               extra_args)
        started.append(process)
        return process

    yield make
    stop_processes(started)


def submit(redis_url: str, tool: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tasks", "submit", tool, *args], cwd=REPO, env=fault_env(redis_url),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["id"]


def submit_noise(redis_url: str, files: list[Path]) -> str:
    return submit(redis_url, "anomaly", *map(str, files), "--param=object_name=noise", "--param=preset=winclip-tiny")


def running(job_id: str, attempt: int = 1) -> bool:
    job = client.get(job_id)
    return job.status is Status.RUNNING and job.attempts == attempt and job.progress > 0.05


def test_a_killed_worker_process_gets_its_job_back_and_runs_it_again(redis_url, worker_factory, tmp_path):
    parent = worker_factory(redis_url, "a")
    job_id = submit_noise(redis_url, noise_images(tmp_path / "many", 150))
    wait_until(lambda: running(job_id), timeout=90, what="the job to run")
    kill_pool_processes(parent.pid)
    job = client.wait(job_id, timeout=180)
    assert job.status is Status.SUCCEEDED, job.error
    assert job.attempts == 2 and len(job.result["images"]) == 150


def test_a_job_that_keeps_killing_its_worker_process_fails_after_max_attempts(redis_url, worker_factory, tmp_path):
    parent = worker_factory(redis_url, "c")
    images = noise_images(tmp_path / "many", 150)
    job_id = submit_noise(redis_url, images)
    for attempt in (1, 2):  # FEWSHOT_MAX_ATTEMPTS defaults to 2
        wait_until(lambda attempt=attempt: running(job_id, attempt), timeout=120, what=f"run {attempt} of the job")
        kill_pool_processes(parent.pid)
    job = client.wait(job_id, timeout=60)
    assert job.status is Status.FAILED and job.attempts == 2
    assert "stopped twice before the job ended" in job.error and "smaller or fewer inputs" in job.error
    assert all(get_store().input_path(job_id, stored).is_file() for stored in job.inputs)
    after = client.wait(submit_noise(redis_url, images[:1]), timeout=120)
    assert after.status is Status.SUCCEEDED, after.error  # the worker replaced its pool process and serves


def test_a_vanished_worker_fails_its_job_after_the_heartbeat_timeout(redis_url, worker_factory, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("FEWSHOT_HEARTBEAT_TIMEOUT", "3")
    worker = worker_factory(redis_url, "b")
    job_id = submit_noise(redis_url, noise_images(tmp_path / "many", 200))
    wait_until(lambda: running(job_id), timeout=90, what="the job to run")
    os.killpg(worker.pid, signal.SIGKILL)  # the whole worker, parent and child, as if the machine died
    worker.wait(timeout=10)
    assert client.get(job_id).status is Status.RUNNING  # not yet: the heartbeat is fresh
    wait_until(lambda: client.get(job_id).status.final, timeout=30, what="the lost job to be declared failed")
    job = client.get(job_id)
    assert job.status is Status.FAILED and "stopped answering" in job.error and "Submit the job again" in job.error
    assert all(get_store().input_path(job_id, stored).is_file() for stored in job.inputs)  # nothing lost


def test_a_job_over_the_memory_limit_fails_in_its_own_process_and_the_worker_serves_the_next(
        redis_url, worker_factory, tmp_path):
    # About 4 GB of address space is torch and a tiny model; a job asking for 6 GB more cannot fit.
    worker_factory(redis_url, "m", extra_args=("--include", "tests.integration.fault_tasks"),
                   FEWSHOT_JOB_MEMORY_MB="6000")
    store = get_store()
    job = store.create("test_allocate", {"megabytes": 6000}, {})
    sender = Celery(broker=redis_url, set_as_current=False)
    sender.send_task(ALLOCATE, args=[job.id], task_id=job.id, queue="quick")
    job = client.wait(job.id, timeout=120)
    assert job.status is Status.FAILED and job.error.startswith("The device ran out of memory on this job")
    assert "a job may use 6000 MB here, FEWSHOT_JOB_MEMORY_MB" in job.error and "smaller" in job.error
    after = client.wait(submit_noise(redis_url, noise_images(tmp_path / "one", 1)), timeout=120)
    assert after.status is Status.SUCCEEDED, after.error
    assert after.worker == job.worker and after.attempts == 1


def test_a_quick_job_does_not_wait_behind_a_long_training(redis_url, worker_factory, tmp_path):
    worker_factory(redis_url, "quick", queue="quick")
    worker_factory(redis_url, "long", queue="long")
    colours = colour_classes(tmp_path / "colours")
    dataset = zip_tree(colours, tmp_path / "colours.zip", "colours")
    training = submit(redis_url, "finetune_classify", f"--input=dataset={dataset}", "--param=model_name=lanes redis",
                      "--param=preset=finetune-clip-tiny", "--param=steps=5000", "--param=eval_every=5",
                      "--param=patience=10000")
    a_quick_job_passes_a_long_training(training, lambda: submit_noise(redis_url, noise_images(tmp_path / "one", 1)))

