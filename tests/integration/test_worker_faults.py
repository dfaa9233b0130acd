"""Worker faults against a real Redis: a killed worker process, a killed worker machine.

The rule (README, "Reliability"): a worker *process* killed mid-job while its Celery parent lives
gets the message back at once (acks late + reject on worker lost) and the job runs again from the
start; a whole worker that vanishes stops its job's heartbeat, and after FEWSHOT_HEARTBEAT_TIMEOUT
the job is marked failed with a message. Files written before stay readable either way.
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

from tasks import client
from tasks.client import Status
from tasks.runner import get_store
from tests.conftest import REPO
from tests.helpers import noise_images, wait_until
from tests.integration.conftest import env_for, start_worker, stop_processes

pytestmark = pytest.mark.redis
QUEUE = "faults"


def fault_env(redis_url: str) -> dict[str, str]:
    return env_for(redis_url, FEWSHOT_QUEUE=QUEUE, FEWSHOT_HEARTBEAT_S="0.5")


@pytest.fixture
def worker_factory(tmp_path) -> Iterator:
    started: list[subprocess.Popen] = []

    def make(redis_url: str, name: str) -> subprocess.Popen:
        process = start_worker(fault_env(redis_url), tmp_path / f"{name}.log", f"fault-worker-{name}", QUEUE)
        started.append(process)
        return process

    yield make
    stop_processes(started)


def submit(redis_url: str, files: list[Path]) -> str:
    args = [sys.executable, "-m", "tasks", "submit", "anomaly", *map(str, files),
            "--param=object_name=noise", "--param=preset=winclip-tiny"]
    done = subprocess.run(args, cwd=REPO, env=fault_env(redis_url), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["id"]


def running(job_id: str) -> bool:
    job = client.get(job_id)
    return job.status is Status.RUNNING and job.progress > 0.05


def test_a_killed_worker_process_gets_its_job_back_and_runs_it_again(redis_url, worker_factory, tmp_path):
    parent = worker_factory(redis_url, "a")
    job_id = submit(redis_url, noise_images(tmp_path / "many", 150))
    wait_until(lambda: running(job_id), timeout=90, what="the job to run")
    children = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the prefork worker has no child process"
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    job = client.wait(job_id, timeout=180)
    assert job.status is Status.SUCCEEDED, job.error
    assert job.attempts == 2 and len(job.result["images"]) == 150


def test_a_vanished_worker_fails_its_job_after_the_heartbeat_timeout(redis_url, worker_factory, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("FEWSHOT_HEARTBEAT_TIMEOUT", "3")
    worker = worker_factory(redis_url, "b")
    job_id = submit(redis_url, noise_images(tmp_path / "many", 200))
    wait_until(lambda: running(job_id), timeout=90, what="the job to run")
    os.killpg(worker.pid, signal.SIGKILL)  # the whole worker, parent and child, as if the machine died
    worker.wait(timeout=10)
    assert client.get(job_id).status is Status.RUNNING  # not yet: the heartbeat is fresh
    wait_until(lambda: client.get(job_id).status.final, timeout=30, what="the lost job to be declared failed")
    job = client.get(job_id)
    assert job.status is Status.FAILED and "stopped answering" in job.error and "Submit the job again" in job.error
    assert all(get_store().input_path(job_id, stored).is_file() for stored in job.inputs)  # nothing lost
