"""A Redis restart in the middle of a job, with the web app and a worker in their own processes.

The rule (README, "Reliability"): job states live in the artifact store, not in Redis, so the page
keeps showing them; the running job goes on; a job queued before the restart survives it when Redis
keeps an append-only file; a submission while Redis is down fails at once with a message; after the
restart the web app and the worker reconnect by themselves.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gradio_client import Client, handle_file

from tasks.client import Job, Status
from tasks.store import get_store
from tests.helpers import noise_images, wait_until
from tests.integration.conftest import RedisServer, env_for, start_web_app, start_worker, stop_processes

pytestmark = pytest.mark.redis


@pytest.fixture
def stack(tmp_path) -> Iterator[dict]:
    redis = RedisServer(tmp_path, durable=True)
    redis.start()
    env = env_for(redis.url, FEWSHOT_QUICK_QUEUE="restart")
    processes = []
    try:
        processes.append(start_worker(env, tmp_path / "worker.log", "restart-worker", "restart"))
        web, url = start_web_app(env, tmp_path / "web.log")
        processes.append(web)
        yield {"redis": redis, "url": url, "worker_log": tmp_path / "worker.log"}
    finally:
        stop_processes(processes)
        redis.stop()


def job_named(object_name: str) -> Job | None:
    found = [job for job in get_store().list(limit=None) if job.params.get("object_name") == object_name]
    return found[0] if found else None


def test_a_redis_restart_during_a_job_loses_nothing_and_the_app_reconnects(stack, tmp_path):
    api = Client(stack["url"], verbose=False)

    def submit(name: str, images: list):
        return api.submit([handle_file(str(image)) for image in images], None, name, "winclip-tiny",
                          api_name="/anomaly")

    long_job = submit("restart-long", noise_images(tmp_path / "long", 90, size=(160, 160)))
    wait_until(lambda: (job := job_named("restart-long")) is not None and job.status is Status.RUNNING
               and job.progress > 0.05, timeout=120, what="the long job to run")
    queued_job = submit("restart-queued", noise_images(tmp_path / "queued", 2))
    wait_until(lambda: job_named("restart-queued") is not None, timeout=60, what="the second job to be queued")
    assert job_named("restart-queued").status is Status.QUEUED  # behind the long one on the only worker

    stack["redis"].stop()
    with pytest.raises(Exception, match="cannot be reached"):  # gradio_client's AppError with the page's message
        api.predict([handle_file(str(noise_images(tmp_path / "down", 1)[0]))], None, "restart-down", "winclip-tiny",
                    api_name="/anomaly")
    assert job_named("restart-long").status is Status.RUNNING  # the worker goes on without its broker
    stack["redis"].start()

    assert "Succeeded" in long_job.result(timeout=240)[0]
    assert "Succeeded" in queued_job.result(timeout=120)[0]  # kept in Redis's append-only file
    after = api.predict([handle_file(str(noise_images(tmp_path / "after", 1)[0]))], None, "restart-after",
                        "winclip-tiny", api_name="/anomaly")
    assert "Succeeded" in after[0]  # the web app and the worker reconnected

    states = {job[0]: job[2] for job in api.predict(api_name="/list_jobs")["data"]}
    long_done, queued, down = job_named("restart-long"), job_named("restart-queued"), job_named("restart-down")
    assert states[long_done.id] == "succeeded" and states[queued.id] == "succeeded"
    assert states[down.id] == "failed" and "cannot be reached" in down.error
    assert long_done.attempts == 1 and len(long_done.result["images"]) == 90  # ran once, whole
