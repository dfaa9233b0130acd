"""Load: many signed-in clients at once through the web app, a real Redis and two worker processes.

Bounded (FEWSHOT_LOAD_JOBS jobs from FEWSHOT_LOAD_CLIENTS clients, loopback only). Every job must
end in a final state, none lost or run twice, the Jobs view must keep answering meanwhile, and a user
past the per-user limit must get "Busy" instead of queued work. Run with `-s` to see the figures that
the README's "Reliability" section quotes.
"""

from __future__ import annotations

import os
import re
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from tasks.client import Status
from tasks.store import get_store
from tests.helpers import noise_images, wait_until
from tests.integration.conftest import RedisServer, env_for, start_web_app, start_worker, stop_processes

pytestmark = pytest.mark.redis
JOBS = int(os.environ.get("FEWSHOT_LOAD_JOBS", 36))
CLIENTS = int(os.environ.get("FEWSHOT_LOAD_CLIENTS", 12))
CLIENTS_PER_USER = 3
PASSWORD = "load-test-pw"
USERS = [f"loader{index}" for index in range(CLIENTS // CLIENTS_PER_USER)] + ["greedy", "watcher"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict]:
    """Redis, two workers and the web app (with sign-in), each its own process."""
    root = tmp_path_factory.mktemp("load")
    redis = RedisServer(root)
    redis.start()
    env = env_for(redis.url, FEWSHOT_QUICK_QUEUE="load", FEWSHOT_MAX_ACTIVE_JOBS_PER_USER=str(CLIENTS_PER_USER),
                  FEWSHOT_AUTH=",".join(f"{user}:{PASSWORD}" for user in USERS))
    processes = []
    try:
        logs = [root / "worker-a.log", root / "worker-b.log"]
        processes += [start_worker(env, log, f"load-{log.stem[-1]}", "load") for log in logs]
        web, url = start_web_app(env, root / "web.log")
        processes.append(web)
        yield {"url": url, "worker_logs": logs, "root": root}
    finally:
        stop_processes(processes)
        redis.stop()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def inspect(api: Client, image: Path) -> tuple[float, str]:
    """One /anomaly call as the page makes it: submit, follow to the end; (seconds, final status text)."""
    started = time.monotonic()
    status, *_ = api.predict([handle_file(str(image))], None, "noise", "winclip-tiny", api_name="/anomaly")
    return time.monotonic() - started, status


def test_many_clients_at_once_every_job_ends_once_and_the_ui_keeps_answering(stack, tmp_path):
    images = noise_images(tmp_path / "parts", JOBS, size=(64, 64))
    per_client = [images[index::CLIENTS] for index in range(CLIENTS)]
    stop_probe = threading.Event()
    probe_seconds: list[float] = []

    def probe() -> None:  # a user watching the Jobs tab while the load runs
        watcher = Client(stack["url"], auth=("watcher", PASSWORD), verbose=False)
        while not stop_probe.is_set():
            started = time.monotonic()
            watcher.predict(api_name="/list_jobs")
            probe_seconds.append(time.monotonic() - started)
            stop_probe.wait(0.25)

    def run_client(index: int) -> list[tuple[float, str]]:
        api = Client(stack["url"], auth=(USERS[index // CLIENTS_PER_USER], PASSWORD), verbose=False)
        return [inspect(api, image) for image in per_client[index]]

    watcher = threading.Thread(target=probe, daemon=True)
    watcher.start()
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = [outcome for client_outcomes in pool.map(run_client, range(CLIENTS))
                    for outcome in client_outcomes]
    wall = time.monotonic() - started
    stop_probe.set()
    watcher.join(timeout=30)

    seconds = [s for s, _ in outcomes]
    errors = [status for _, status in outcomes if "Succeeded" not in status]
    jobs = [job for job in get_store().list(limit=None) if job.owner in USERS[:-2]]
    received = Counter(job_id for log in stack["worker_logs"]
                       for job_id in re.findall(r"fewshot\.anomaly\[([0-9a-f]{32})\] received", log.read_text()))
    print(f"\nload: {len(outcomes)} jobs from {CLIENTS} clients ({len(USERS) - 2} users), 2 workers; "
          f"time to final state p50 {statistics.median(seconds):.2f} s, p95 {percentile(seconds, 0.95):.2f} s, "
          f"max {max(seconds):.2f} s; all done in {wall:.1f} s ({len(outcomes) / wall:.2f} jobs/s); "
          f"errors {len(errors)}; Jobs view answered {len(probe_seconds)} times, p50 "
          f"{statistics.median(probe_seconds):.2f} s, p95 {percentile(probe_seconds, 0.95):.2f} s, "
          f"max {max(probe_seconds):.2f} s; jobs per worker {dict(Counter(job.worker.split('@')[0] for job in jobs))}")

    assert len(outcomes) == JOBS and errors == []
    assert len(jobs) == JOBS and all(job.status is Status.SUCCEEDED for job in jobs)  # none lost
    assert all(job.attempts == 1 for job in jobs) and all(received[job.id] == 1 for job in jobs)  # none run twice
    assert {job.worker.split("@")[0] for job in jobs} == {"load-a", "load-b"}  # both workers served
    assert len(probe_seconds) >= 5 and percentile(probe_seconds, 0.95) < 5.0


def test_a_user_past_the_per_user_limit_is_told_busy_and_nothing_is_queued(stack, tmp_path):
    """Twice the limit submitted at the same moment, each job long enough to be still unfinished; the
    accepted ones are cancelled once the refusals are in."""
    from tasks import client

    attempts = 2 * CLIENTS_PER_USER
    batches = [noise_images(tmp_path / f"greedy{index}", 30, size=(64, 64)) for index in range(attempts)]
    clients = [Client(stack["url"], auth=("greedy", PASSWORD), verbose=False) for _ in range(attempts)]
    before = {job.id for job in get_store().list(limit=None) if job.owner == "greedy"}

    def created() -> list:
        return [job for job in get_store().list(limit=None) if job.owner == "greedy" and job.id not in before]

    futures = [api.submit([handle_file(str(image)) for image in batch], None, "noise", "winclip-tiny",
                          api_name="/anomaly") for api, batch in zip(clients, batches, strict=True)]
    wait_until(lambda: sum(future.done() for future in futures) >= attempts - CLIENTS_PER_USER, timeout=120,
               what="the refusals")
    accepted = created()
    for job in accepted:
        client.cancel(job.id)
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result(timeout=120)[0])
        except Exception as exc:  # gradio_client raises the page's gr.Error as AppError
            outcomes.append(str(exc))
    busy = [text for text in outcomes if "Busy: you already have" in text]
    assert len(busy) == attempts - CLIENTS_PER_USER, outcomes
    assert all(f"the limit per user is {CLIENTS_PER_USER}" in text for text in busy)
    assert len(accepted) == len(created()) == CLIENTS_PER_USER  # nothing stored for the refused ones
    assert all(client.get(job.id).status.final for job in accepted)
