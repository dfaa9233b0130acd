"""The transport of a shared deployment: Redis with a password, and workers that take JSON only."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tasks import client
from tasks.client import Status
from tasks.config import Settings, get_settings
from tasks.store import finish_job, get_store
from tests.conftest import REPO
from tests.helpers import noise_images, wait_until
from tests.integration.conftest import RedisServer, env_for, start_worker, stop_processes

pytestmark = pytest.mark.redis
PASSWORD = "s3cret-queue-pw"
QUEUE = "secured"


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("secured")
    redis = RedisServer(root, password=PASSWORD)
    redis.start()
    worker = None
    try:
        worker = start_worker(env_for(redis.url, FEWSHOT_QUICK_QUEUE=QUEUE), root / "worker.log", "secured", QUEUE)
        yield {"url": redis.url, "log": root / "worker.log"}
    finally:
        stop_processes([worker] if worker else [])
        redis.stop()


def submit_from_cli(redis_url: str, image) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "tasks", "submit", "anomaly", str(image), "--param=object_name=noise",
            "--param=preset=winclip-tiny"]
    return subprocess.run(args, cwd=REPO, env=env_for(redis_url, FEWSHOT_QUICK_QUEUE=QUEUE), capture_output=True,
                          text=True, timeout=120)


def test_jobs_flow_through_a_redis_that_requires_a_password(secured, tmp_path):
    done = submit_from_cli(secured["url"], noise_images(tmp_path, 1)[0])
    assert done.returncode == 0, done.stderr
    job = client.wait(json.loads(done.stdout)["id"], timeout=120)
    assert job.status is Status.SUCCEEDED, job.error


def test_a_wrong_password_is_refused_without_showing_it(secured, tmp_path):
    wrong = secured["url"].replace(PASSWORD, "not-the-password")
    done = submit_from_cli(wrong, noise_images(tmp_path, 1)[0])
    assert done.returncode == 2 and "cannot be reached" in done.stderr
    assert "not-the-password" not in done.stderr and "***@127.0.0.1" in done.stderr


def test_a_worker_refuses_messages_that_are_not_json(secured, tmp_path):
    """A pickled message (which could run code when loaded) is dropped unread; its job never starts."""
    from tasks.celery_app import create_app

    job = get_store().create("anomaly", {"object_name": "noise", "preset": "winclip-tiny"},
                             {"images": [("a.png", noise_images(tmp_path, 1)[0])]})
    settings = Settings(secured["url"], get_settings().artifact_dir, QUEUE, "long", 600, 2)
    sender = create_app(settings)
    sender.conf.task_serializer = "pickle"
    sender.conf.accept_content = ["json", "pickle"]
    sender.send_task("fewshot.anomaly", args=[job.id], task_id=job.id, queue=QUEUE, serializer="pickle")
    wait_until(lambda: "untrusted content of type pickle" in secured["log"].read_text(), timeout=30,
               what="the worker to refuse the pickled message")
    try:
        assert client.get(job.id).status is Status.QUEUED and client.get(job.id).attempts == 0
    finally:
        finish_job(get_store(), job.id, Status.CANCELLED, "test over")  # not left counting against the limits
