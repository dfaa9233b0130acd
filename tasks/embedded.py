"""Embedded mode: the app starts and supervises its own Celery workers, one process per lane.

Jobs never run in the web process: a job that exhausts memory or crashes takes down its worker process
only. The web process just writes messages to a queue of files under `<artifact dir>/.broker` (kombu's
filesystem transport, nothing to install); each lane's worker is the same `celery -A tasks worker` as
with Redis (prefork pool, concurrency 1). A worker that exits is started again, with backoff, and the
job it was running is sent again (at most FEWSHOT_MAX_ATTEMPTS runs in all). Workers end with the app:
at interpreter exit, or by themselves when the app was killed. Jobs left queued or running by an
earlier app are sent again at start.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import tasks
from tasks.celery_app import PARENT_PID_ENV, app
from tasks.config import get_settings
from tasks.jobs import Job, Status
from tasks.registry import LANES, TOOLS
from tasks.runner import stop_before_running
from tasks.store import finish_job, get_store

log = logging.getLogger(__name__)

SUPERVISE_EVERY_S = 0.5
MAX_BACKOFF_S = 60.0
PROCESSED_KEEP_S = 600  # messages already taken, kept a while for inspection

_lock = threading.Lock()
_stopping = threading.Event()
_workers: dict[str, _Worker] = {}
_supervisor: threading.Thread | None = None
_atexit_registered = False
_supervision_lock: IO | None = None


@dataclass
class _Worker:
    """One lane's worker process and its restart schedule."""

    lane: str
    process: subprocess.Popen
    started_at: float
    failures: int = 0  # exits in a row, each soon after its start
    restart_at: float | None = None

    @property
    def hostname(self) -> str:
        return worker_hostname(self.lane)


def worker_hostname(lane: str) -> str:
    """Celery node name of this app's worker for `lane`; jobs record it as their `worker`."""
    return f"{lane}-{os.getpid()}@embedded"


def log_path(lane: str) -> Path:
    """Where a lane's worker writes its log (appended across restarts)."""
    return get_settings().artifact_dir / "logs" / f"worker-{lane}.log"


def _claim_supervision() -> bool:
    """One process per artifact directory runs the workers; another one (a second app, `python -m tasks
    submit` while the app runs) only sends messages, which the first one's workers take."""
    global _supervision_lock
    if _supervision_lock is None:
        handle = open(get_settings().broker_dir / "supervisor.lock", "a")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        _supervision_lock = handle
    return True


def ensure_started() -> None:
    """Start one worker process per lane and their supervisor, once per process and artifact directory;
    before that, send again the jobs an earlier app left unfinished."""
    global _supervisor, _atexit_registered
    with _lock:
        if _workers or not _claim_supervision():
            return
        requeue_unfinished(LANES)
        _stopping.clear()
        for lane in LANES:
            _workers[lane] = _Worker(lane, _spawn(lane), time.monotonic())
        _supervisor = threading.Thread(target=_supervise, name="fewshot-embedded-supervisor", daemon=True)
        _supervisor.start()
        if not _atexit_registered:
            atexit.register(stop)
            _atexit_registered = True


def worker_pids() -> dict[str, int]:
    """Process id of each lane's worker (the Celery parent; its pool process runs the jobs)."""
    with _lock:
        return {lane: worker.process.pid for lane, worker in _workers.items() if worker.process.poll() is None}


def _spawn(lane: str) -> subprocess.Popen:
    settings = get_settings()
    log_file = log_path(lane)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    source_root = str(Path(tasks.__file__).resolve().parents[1])
    env = {**os.environ, PARENT_PID_ENV: str(os.getpid()),
           "PYTHONPATH": os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", settings.queue_for(lane),
               "--pool", "prefork", "--concurrency", "1", "--hostname", worker_hostname(lane), "--loglevel", "INFO",
               "--without-heartbeat", "--without-mingle", "--without-gossip"]
    with open(log_file, "a") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)  # own process group: stopped with its pool process


def _supervise() -> None:
    """Restart a worker that exited (1 s, 2 s, 4 s… up to a minute while it keeps failing at start) and send
    its unfinished jobs again; drop old processed messages."""
    last_prune = 0.0
    while not _stopping.wait(SUPERVISE_EVERY_S):
        now = time.monotonic()
        with _lock:
            for worker in _workers.values():
                if worker.restart_at is None and worker.process.poll() is not None:
                    worker.failures = worker.failures + 1 if now - worker.started_at < MAX_BACKOFF_S else 1
                    delay = min(2.0 ** (worker.failures - 1), MAX_BACKOFF_S)
                    log.warning("the %s worker exited with status %s; restarting it in %.0f s (log: %s)",
                                worker.lane, worker.process.returncode, delay, log_path(worker.lane))
                    requeue_unfinished([worker.lane], lost_worker=worker.hostname)
                    worker.restart_at = now + delay
                if worker.restart_at is not None and now >= worker.restart_at and not _stopping.is_set():
                    worker.process, worker.started_at, worker.restart_at = _spawn(worker.lane), now, None
        if now - last_prune > 60:
            _prune_processed()
            last_prune = now


def _prune_processed() -> None:
    cutoff = time.time() - PROCESSED_KEEP_S
    for path in (get_settings().broker_dir / "processed").glob("*.msg"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


def _pending_job_ids(queue: str) -> set[str]:
    """Ids of the jobs that have a message waiting in `queue` (one file per message)."""
    ids = set()
    for path in (get_settings().broker_dir / "queue").glob(f"*.{queue}.msg"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            ids.add(json.loads(path.read_bytes())["headers"]["id"])
    return ids


def requeue_unfinished(lanes: tuple[str, ...] | list[str] = LANES, lost_worker: str | None = None) -> list[str]:
    """Send again the unfinished jobs of `lanes` that no message will deliver: left by an earlier app, or by
    the worker `lost_worker` that just exited (its running job). A cancelled job is finished instead, and
    a running one that already stopped its worker FEWSHOT_MAX_ATTEMPTS times fails. Returns the ids sent."""
    settings = get_settings()
    store = get_store()
    pending = set().union(*(_pending_job_ids(settings.queue_for(lane)) for lane in lanes))
    requeued = []
    for job in store.active():
        tool = TOOLS.get(job.tool)
        if tool is None and not job.status.final:  # a kind of job this version no longer has (renamed)
            finish_job(store, job.id, Status.FAILED, "Failed", f"This version runs no {job.tool!r} jobs; submit it "
                       "again from its tab.")
            continue
        if job.status.final or tool.lane not in lanes or job.id in pending:
            continue
        if lost_worker is not None and job.status is Status.RUNNING and job.worker != lost_worker:
            continue  # running on another worker, alive
        if stop_before_running(store, job):
            continue
        reason = "its worker stopped" if lost_worker else "a restart"

        def requeue(record: Job, reason: str = reason) -> None:
            record.status, record.progress, record.message = Status.QUEUED, 0.0, f"Queued again after {reason}"

        store.update(job.id, requeue)
        app.send_task(tool.task, args=[job.id], task_id=job.id)
        requeued.append(job.id)
    if requeued:
        log.info("re-queued %d unfinished jobs", len(requeued))
    return requeued


def stop(timeout: float = 10.0) -> None:
    """Stop the supervisor and the workers: a warm shutdown, then a kill of what is left after `timeout`."""
    global _supervisor
    _stopping.set()
    if _supervisor is not None:
        _supervisor.join(timeout=5)
        _supervisor = None
    with _lock:
        processes = [worker.process for worker in _workers.values()]
        _workers.clear()
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # the pool process too, and the worker if still there
        process.wait(timeout=10)
