"""When a running job counts as lost: its worker touches a heartbeat file; silence past a timeout means the
worker was killed or its machine went down. Read by the job API (status, cancel) and by the workers."""

from __future__ import annotations

import os
import time

from tasks.jobs import Job, Status
from tasks.store import ArtifactStore


def heartbeat_interval_s() -> float:
    return float(os.environ.get("FEWSHOT_HEARTBEAT_S", 10))


def heartbeat_timeout_s() -> float:
    """A running job whose worker has been silent this long is declared lost (FEWSHOT_HEARTBEAT_TIMEOUT)."""
    return float(os.environ.get("FEWSHOT_HEARTBEAT_TIMEOUT", 120))


def silence_s(store: ArtifactStore, job: Job, now: float | None = None) -> float:
    """Seconds since the worker running `job` last touched its heartbeat."""
    try:
        last = (store.job_dir(job.id) / "heartbeat").stat().st_mtime
    except FileNotFoundError:
        last = job.started_at or job.created_at
    return (now or time.time()) - last


def fail_if_lost(store: ArtifactStore, job: Job, now: float | None = None) -> Job:
    """The rule for a worker that died without a word (killed, machine lost): once its heartbeat is older
    than `heartbeat_timeout_s()`, the running job is marked failed. Outputs already written stay."""
    if job.status is not Status.RUNNING:
        return job
    silent = silence_s(store, job, now)
    if silent <= heartbeat_timeout_s():
        return job

    def lost(record: Job) -> None:
        if record.status is Status.RUNNING:  # it may have finished meanwhile
            record.status, record.message, record.finished_at = Status.FAILED, "Failed", time.time()
            record.error = (f"The worker running this job ({record.worker}) stopped answering {silent:.0f} s ago: "
                            "it was killed or its machine went down. Files it wrote before are kept. "
                            "Submit the job again.")

    return store.update(job.id, lost)
