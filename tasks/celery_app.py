"""The Celery application: `celery -A tasks worker -Q quick,long` runs the same tasks as the embedded workers."""

from __future__ import annotations

import logging
import os
import resource
import signal
import threading
import time
from typing import Any

from celery import Celery, signals

from tasks.config import Settings, get_settings, job_memory_limit_mb
from tasks.registry import TOOLS

TASK_MODULES = ["tasks.tools", "tasks.completion", "tasks.finetune"]
PARENT_PID_ENV = "FEWSHOT_WORKER_PARENT_PID"  # set by tasks.embedded: the app process that supervises this worker

log = logging.getLogger(__name__)


def _transport_options(settings: Settings) -> dict[str, Any]:
    if settings.redis_url:
        return {"visibility_timeout": settings.job_time_limit_s + 600}  # longer than any job, or Redis redelivers
    folders = {name: settings.broker_dir / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {"data_folder_in": str(folders["queue"]), "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]), "store_processed": True,  # a rename: one taker only
            "control_folder": str(folders["control"]), "polling_interval": 0.1}


def create_app(settings: Settings) -> Celery:
    """JSON messages that carry only job ids; late acks and prefetch 1 for long GPU jobs; one queue per lane."""
    app = Celery("fewshot_studio", broker=settings.broker_url, include=TASK_MODULES)
    app.conf.update(
        broker_transport="tasks.file_broker:Transport" if settings.embedded else None,
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # job state lives in the artifact store, not in a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_lost_wait=1.0,  # a killed pool process: its job back in the queue in 1 s, not 10 (results unused)
        worker_prefetch_multiplier=1,
        task_default_queue=settings.quick_queue,
        task_routes={tool.task: {"queue": settings.queue_for(tool.lane)} for tool in TOOLS.values()},
        task_time_limit=settings.job_time_limit_s,
        task_soft_time_limit=max(settings.job_time_limit_s - 60, 1),
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_enable_remote_control=not settings.embedded,  # no broadcast (pidbox) over the embedded file queue
    )
    return app


app = create_app(get_settings())


@signals.worker_process_init.connect
def limit_job_memory(**_: Any) -> None:
    """In each pool process, before any job: cap its address space (FEWSHOT_JOB_MEMORY_MB), so a runaway
    job gets an out-of-memory error in its own process instead of taking the machine down."""
    limit_mb = job_memory_limit_mb()
    if limit_mb:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit_mb * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
        except (ValueError, OSError) as exc:  # above the hard limit, or not supported by this OS
            log.warning("cannot limit job memory to %d MB: %s", limit_mb, exc)


@signals.worker_init.connect
def exit_with_the_app(**_: Any) -> None:
    """An embedded worker ends with the app that started it, even when that app was killed: no orphans."""
    parent = int(os.environ.get(PARENT_PID_ENV) or 0)
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.killpg(os.getpgrp(), signal.SIGKILL)  # the worker and its pool process (own process group)

    threading.Thread(target=watch, name="exit-with-the-app", daemon=True).start()
