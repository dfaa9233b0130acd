"""The life of a job on a worker: states, progress, cancellation and human error messages.

Every tool's task is `run_job(job_id, body)`; the body only computes and writes outputs.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from engine.errors import UserInputError, WeightsNotFoundError
from engine.progress import Cancelled
from tasks.config import get_settings, job_memory_limit_mb
from tasks.jobs import Job, Status
from tasks.liveness import heartbeat_interval_s
from tasks.store import ArtifactStore, finish_job, get_store

log = logging.getLogger(__name__)


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
            raise Cancelled
        now = time.monotonic()
        if now - self._last_report >= self.MIN_REPORT_INTERVAL_S or fraction >= 1.0:
            self._last_report = now

            def report(job: Job) -> None:
                job.progress, job.message = round(min(max(fraction, 0.0), 1.0), 4), message

            self.job = self.store.update(self.job.id, report)


JobBody = Callable[[JobContext], tuple[dict[str, Any], list[str]]]


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


def crash_error(attempts: int) -> str:
    """Why a job whose worker process stopped under it `attempts` times is not tried again."""
    times = {1: "once", 2: "twice"}.get(attempts, f"{attempts} times")
    return (f"The worker process running this job stopped {times} before the job ended (it was killed, most "
            "often for using too much memory), so it is not tried again. Use smaller or fewer inputs (for a "
            "video, a larger frame stride or fewer frames per second), or a smaller model preset, then submit "
            "it again. The inputs are kept.")


def stop_before_running(store: ArtifactStore, job: Job) -> bool:
    """Finish an unfinished job that must not run (again): a cancel was asked for, or the worker process
    running it stopped FEWSHOT_MAX_ATTEMPTS times (its record still says running). True if it was finished."""
    if store.cancel_requested(job.id):
        finish_job(store, job.id, Status.CANCELLED,
                   "Cancelled" if job.status is Status.RUNNING else "Cancelled before it started")
        return True
    if job.status is Status.RUNNING and job.attempts >= get_settings().max_attempts:
        log.warning("job %s stopped its worker %d times; failing it", job.id, job.attempts)
        finish_job(store, job.id, Status.FAILED, "Failed", error=crash_error(job.attempts))
        return True
    return False


def is_out_of_memory(exc: BaseException) -> bool:
    """A Python MemoryError (e.g. under FEWSHOT_JOB_MEMORY_MB), or a device's out-of-memory error: only torch
    raises those, so a process without torch has none."""
    if isinstance(exc, MemoryError):
        return True
    if "torch" not in sys.modules:
        return False
    from engine.device import is_out_of_memory as device_out_of_memory

    return device_out_of_memory(exc)


def out_of_memory_error(exc: BaseException) -> str:
    """Free the device for the next job (the worker keeps serving) and tell the user what to change."""
    from engine.loading import recover_from_out_of_memory

    log.warning("job ran out of memory: %r", exc)
    state = recover_from_out_of_memory()
    detail = str(exc).split("\n")[0][:200] or type(exc).__name__
    limit_mb = job_memory_limit_mb()
    if limit_mb:
        detail += f"; a job may use {limit_mb} MB here, FEWSHOT_JOB_MEMORY_MB"
    return (f"The device ran out of memory on this job ({detail}). Use smaller or fewer "
            "images per job (for a video, a larger frame stride or fewer frames per second; for training, a smaller "
            "batch size), or a smaller model preset, then submit it again. The worker keeps serving; its models were "
            f"unloaded and {state}. The inputs are kept.")


def run_job(job_id: str, body: JobBody, worker: str | None = None) -> None:
    """Run a job body with the full state machine; never raises for a job's own failure.

    A delivery of a job that is already final is ignored; a redelivery of a running one (its worker
    process was killed and Celery gave the message back) runs it again from the start, unless it has
    stopped its worker FEWSHOT_MAX_ATTEMPTS times already or a cancel was asked for meanwhile.
    """
    store = get_store()
    job = store.read(job_id)
    if job.status.final:
        log.info("job %s is already %s; ignoring a repeated delivery", job_id, job.status.value)
        return
    if stop_before_running(store, job):
        return

    def start(record: Job) -> None:
        record.status, record.started_at, record.message, record.progress = Status.RUNNING, time.time(), "Starting", 0.0
        record.attempts += 1
        record.worker = worker or socket.gethostname()

    context = JobContext(store, store.update(job_id, start))
    try:
        with heartbeat(store, job_id):
            result, outputs = body(context)
    except Cancelled:
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
        reference = uuid.uuid4().hex[:8]
        log.exception("job %s (%s) failed: internal error, reference %s", job_id, job.tool, reference)
        finish_job(store, job_id, Status.FAILED, "Failed",
                error=f"Internal error while running this job (reference {reference}). The inputs are kept; "
                "the administrator can find the details in the worker log under that reference.")
    else:
        finish_job(store, job_id, Status.SUCCEEDED, "Done", result=result, outputs=outputs)
