"""The Celery application: `celery -A tasks worker -Q gpu` runs the same tasks as the embedded worker."""

from __future__ import annotations

from celery import Celery

from tasks.config import Settings, get_settings

TASK_MODULES = ["tasks.anomaly", "tasks.completion", "tasks.insertion", "tasks.finetune"]


def create_app(settings: Settings) -> Celery:
    """JSON messages that carry only job ids; late acks and prefetch 1 for long GPU jobs."""
    app = Celery("fewshot_studio", broker=settings.broker_url, include=TASK_MODULES)
    transport_options = (
        {"visibility_timeout": settings.job_time_limit_s + 600}  # longer than any job, or Redis redelivers
        if settings.redis_url
        else {"polling_interval": 0.05}
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # job state lives in the artifact store, not in a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.queue,
        task_routes={"fewshot.*": {"queue": settings.queue}},
        task_time_limit=settings.job_time_limit_s,
        task_soft_time_limit=max(settings.job_time_limit_s - 60, 1),
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


app = create_app(get_settings())
