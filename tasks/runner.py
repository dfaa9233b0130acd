"""The life of a job on a worker: states, progress, cancellation and human error messages.

Every tool's task is `run_job(job_id, body)`; the body only computes and writes outputs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from engine.errors import UserInputError, WeightsNotFoundError
from tasks.config import get_settings
from tasks.jobs import Job, Status
from tasks.store import ArtifactStore

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised from a progress report once the user has asked to cancel."""


def get_store() -> ArtifactStore:
    return ArtifactStore(get_settings().artifact_dir)


class JobContext:
    """What a job body sees: its record, its input files, where to write, how to report progress."""

    MIN_REPORT_INTERVAL_S = 0.25

    def __init__(self, store: ArtifactStore, job: Job) -> None:
        self.store = store
        self.job = job
        self._last_report = 0.0

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def input_files(self, role: str = "images") -> list[tuple[str, Path]]:
        """(name the user gave, stored path) for each input of a role, in upload order."""
        return self.store.input_files(self.job, role)

    @property
    def output_dir(self) -> Path:
        return self.store.job_dir(self.job.id) / "outputs"

    @property
    def work_dir(self) -> Path:
        """Scratch space of the job (e.g. an extracted archive), beside its inputs and outputs."""
        return self.store.job_dir(self.job.id) / "work"

    def progress(self, fraction: float, message: str) -> None:
        """Record progress (at most 4 writes a second) and stop the job if a cancel was asked for."""
        if self.store.cancel_requested(self.job.id):
            raise JobCancelled
        now = time.monotonic()
        if now - self._last_report >= self.MIN_REPORT_INTERVAL_S or fraction >= 1.0:
            self._last_report = now

            def report(job: Job) -> None:
                job.progress, job.message = round(min(max(fraction, 0.0), 1.0), 4), message

            self.job = self.store.update(self.job.id, report)


JobBody = Callable[[JobContext], tuple[dict[str, Any], list[str]]]


def finish_job(store: ArtifactStore, job_id: str, status: Status, message: str, error: str | None = None,
               result: dict[str, Any] | None = None, outputs: list[str] | None = None) -> None:
    """Put a job in a final state with its message (and error, result, outputs)."""

    def change(job: Job) -> None:
        job.status, job.message, job.error, job.finished_at = status, message, error, time.time()
        if status is Status.SUCCEEDED:
            job.progress = 1.0
        if result is not None:
            job.result = result
        if outputs is not None:
            job.outputs = outputs

    store.update(job_id, change)


def heartbeat_interval_s() -> float:
    return float(os.environ.get("FEWSHOT_HEARTBEAT_S", 10))


def heartbeat_timeout_s() -> float:
    """A running job whose worker has been silent this long is declared lost (FEWSHOT_HEARTBEAT_TIMEOUT)."""
    return float(os.environ.get("FEWSHOT_HEARTBEAT_TIMEOUT", 120))


@contextlib.contextmanager
def heartbeat(store: ArtifactStore, job_id: str) -> Iterator[None]:
    """Touch the job's heartbeat file from a side thread while its body runs, even inside long steps."""
    path = store.job_dir(job_id) / "heartbeat"
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(OSError):
                path.touch()
            if stop.wait(heartbeat_interval_s()):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def fail_if_lost(store: ArtifactStore, job: Job, now: float | None = None) -> Job:
    """The rule for a worker that died without a word (killed, machine lost): once its heartbeat is older
    than `heartbeat_timeout_s()`, the running job is marked failed. Outputs already written stay."""
    if job.status is not Status.RUNNING:
        return job
    try:
        last = (store.job_dir(job.id) / "heartbeat").stat().st_mtime
    except FileNotFoundError:
        last = job.started_at or job.created_at
    silent = (now or time.time()) - last
    if silent <= heartbeat_timeout_s():
        return job

    def lost(record: Job) -> None:
        if record.status is Status.RUNNING:  # it may have finished meanwhile
            record.status, record.message, record.finished_at = Status.FAILED, "Failed", time.time()
            record.error = (f"The worker running this job ({record.worker}) stopped answering {silent:.0f} s ago: "
                            "it was killed or its machine went down. Files it wrote before are kept. "
                            "Submit the job again.")

    return store.update(job.id, lost)


def is_out_of_memory(exc: BaseException) -> bool:
    """Only torch raises the device's out-of-memory errors, so a process without torch has none."""
    if "torch" not in sys.modules:
        return False
    from engine.device import is_out_of_memory as device_out_of_memory

    return device_out_of_memory(exc)


def out_of_memory_error(exc: BaseException) -> str:
    """Free the device for the next job (the worker keeps serving) and tell the user what to change."""
    from engine.device import recover_from_out_of_memory

    log.warning("job ran out of device memory: %s", exc)
    state = recover_from_out_of_memory()
    return ("The device ran out of memory on this job (" + str(exc).split("\n")[0][:200] + "). Use smaller or fewer "
            "images per job (for a video, a larger frame stride or fewer frames per second; for training, a smaller "
            "batch size), or a smaller model preset, then submit it again. The worker keeps serving; its models were "
            f"unloaded and {state}. The inputs are kept.")


def run_job(job_id: str, body: JobBody, worker: str | None = None) -> None:
    """Run a job body with the full state machine; never raises for a job's own failure.

    A delivery of a job that is already final is ignored; a redelivery of a running one (its worker
    process was killed and Celery gave the message to another) runs it again from the start.
    """
    store = get_store()
    job = store.read(job_id)
    if job.status.final:
        log.info("job %s is already %s; ignoring a repeated delivery", job_id, job.status.value)
        return
    if store.cancel_requested(job_id):
        finish_job(store, job_id, Status.CANCELLED, "Cancelled before it started")
        return

    def start(record: Job) -> None:
        record.status, record.started_at, record.message = Status.RUNNING, time.time(), "Starting"
        record.attempts += 1
        record.worker = worker or socket.gethostname()

    context = JobContext(store, store.update(job_id, start))
    try:
        with heartbeat(store, job_id):
            result, outputs = body(context)
    except JobCancelled:
        finish_job(store, job_id, Status.CANCELLED, "Cancelled by the user")
    except (UserInputError, WeightsNotFoundError) as exc:
        finish_job(store, job_id, Status.FAILED, "Failed", error=str(exc))
    except SoftTimeLimitExceeded:
        limit = get_settings().job_time_limit_s
        finish_job(store, job_id, Status.FAILED, "Failed",
                error=f"The job ran longer than the {limit} s allowed (FEWSHOT_JOB_TIME_LIMIT); "
                "split the input into smaller jobs or raise the limit.")
    except Exception as exc:  # a bug or an environment fault: keep the worker alive and say so
        if is_out_of_memory(exc):
            finish_job(store, job_id, Status.FAILED, "Failed", error=out_of_memory_error(exc))
            return
        log.exception("job %s (%s) failed", job_id, job.tool)
        finish_job(store, job_id, Status.FAILED, "Failed",
                error=f"Internal error ({type(exc).__name__}: {exc}). The inputs are kept; "
                "the worker log has the details.")
    else:
        finish_job(store, job_id, Status.SUCCEEDED, "Done", result=result, outputs=outputs)
