"""Distributed mode: a real redis-server and a real `celery -A tasks worker` process.

Jobs are submitted from another process with `python -m tasks submit` (the same client API the UI
uses); this test process follows them through the shared artifact store.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import client
from tasks.client import Status
from tests.conftest import REPO
from tests.helpers import noise_images, wait_until
from tests.integration.conftest import env_for, free_port

pytestmark = pytest.mark.redis


def submit(redis_url: str, files: list[Path], **params: str) -> client.Job:
    """Submit from a separate process, as a web app or a script on another machine would."""
    args = [sys.executable, "-m", "tasks", "submit", "anomaly", *map(str, files)]
    args += [f"--param={key}={value}" for key, value in params.items()]
    done = subprocess.run(args, cwd=REPO, env=env_for(redis_url), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return client.Job.from_dict(json.loads(done.stdout))


def test_anomaly_job_runs_on_a_separate_worker(redis_url, worker, metal_plate_images):
    job = submit(redis_url, metal_plate_images[:2], object_name="metal plate", preset="winclip-tiny")
    job = client.wait(job.id, timeout=120)
    assert job.status is Status.SUCCEEDED, (job.error, worker.read_text()[-3000:])
    assert job.worker.startswith("test-worker@") and len(job.result["images"]) == 2
    assert client.artifact_path(job.id, "scores.json").is_file()
    assert job.id in worker.read_text()  # the separate worker process took it


def test_corrupt_image_fails_with_a_message_on_the_worker(redis_url, worker, tmp_path, metal_plate_images):
    broken = tmp_path / "broken.png"
    broken.write_bytes(metal_plate_images[0].read_bytes()[:1000])
    job = client.wait(submit(redis_url, [broken], object_name="plate", preset="winclip-tiny").id, timeout=60)
    assert job.status is Status.FAILED and "broken.png: the image is corrupt or truncated" in job.error


def test_cancel_a_running_job_on_the_worker(redis_url, worker, tmp_path):
    job = submit(redis_url, noise_images(tmp_path / "many", 150), object_name="noise", preset="winclip-tiny")
    wait_until(lambda: client.get(job.id).status is Status.RUNNING and client.get(job.id).progress > 0.05,
               timeout=90, what="the job to run")
    client.cancel(job.id)
    job = client.wait(job.id, timeout=30)
    assert job.status is Status.CANCELLED and job.progress < 1.0


def test_unreachable_redis_gives_an_actionable_message(metal_plate_images):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    args = [sys.executable, "-m", "tasks", "submit", "anomaly", str(metal_plate_images[0]), "--param=object_name=x",
            "--param=preset=winclip-tiny"]  # a model this machine can run: the broker is what is missing
    done = subprocess.run(args, cwd=REPO, env=env_for(closed), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "cannot be reached" in done.stderr and "unset FEWSHOT_REDIS_URL" in done.stderr
    records = client.list_jobs(10)
    assert any(job.status is Status.FAILED and "cannot be reached" in (job.error or "") for job in records)


def test_video_job_on_the_worker_from_the_tasks_cli(redis_url, worker, tmp_path):
    from tests.helpers import moving_square_video

    moving_square_video(tmp_path / "line.mp4", frames=8, size=(64, 48))
    args = [sys.executable, "-m", "tasks", "submit", "anomaly_video", f"--input=video={tmp_path / 'line.mp4'}",
            "--param=object_name=plate", "--param=preset=winclip-tiny", "--param=stride=4"]
    done = subprocess.run(args, cwd=REPO, env=env_for(redis_url), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    job = client.wait(json.loads(done.stdout)["id"], timeout=120)
    assert job.status is Status.SUCCEEDED, (job.error, worker.read_text()[-3000:])
    assert [f["frame"] for f in job.result["frames"]] == [0, 4] and job.worker.startswith("test-worker@")
