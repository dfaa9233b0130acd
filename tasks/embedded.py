"""Embedded mode: a Celery worker thread inside the app process, on an in-memory broker.

Same task code, states, progress and cancellation as separate workers; nothing to install.
Jobs that were queued or running when the process last stopped are queued again at start.
"""

from __future__ import annotations

import logging
import threading

from tasks.celery_app import app
from tasks.config import get_settings
from tasks.jobs import Job, Status
from tasks.runner import finish_job, get_store

log = logging.getLogger(__name__)

_lock = threading.Lock()
_worker = None
_thread: threading.Thread | None = None


def ensure_started() -> None:
    """Start the in-process worker once, then re-queue unfinished jobs from an earlier run."""
    global _worker, _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        from celery.worker import WorkController

        settings = get_settings()
        _worker = WorkController(
            app=app, hostname="embedded@localhost", pool_cls="solo", concurrency=1, queues=[settings.queue],
            without_heartbeat=True, without_mingle=True, without_gossip=True, loglevel="WARNING",
        )
        _thread = threading.Thread(target=_worker.start, name="fewshot-embedded-worker", daemon=True)
        _thread.start()
        requeue_unfinished()


def requeue_unfinished() -> list[str]:
    """Send again the jobs a previous process left queued or running; returns their ids."""
    from tasks.client import TOOLS

    store = get_store()
    requeued = []
    for job in store.list(limit=10_000):
        if job.status.final or job.tool not in TOOLS:
            continue
        if store.cancel_requested(job.id):
            finish_job(store, job.id, Status.CANCELLED, "Cancelled")
            continue

        def requeue(record: Job) -> None:
            record.status, record.progress, record.message = Status.QUEUED, 0.0, "Queued again after a restart"

        store.update(job.id, requeue)
        app.send_task(TOOLS[job.tool], args=[job.id], task_id=job.id, queue=get_settings().queue)
        requeued.append(job.id)
    if requeued:
        log.info("re-queued %d unfinished jobs", len(requeued))
    return requeued


def stop() -> None:
    global _worker, _thread
    with _lock:
        if _worker is not None:
            _worker.stop(in_sighandler=False)
        if _thread is not None:
            _thread.join(timeout=10)
        _worker, _thread = None, None
