"""A test-only task, loaded into a real worker with `celery -A tasks worker --include tests.integration.fault_tasks`:
a job that asks for a given amount of memory at once, through torch's CPU allocator, as a runaway job would."""

from __future__ import annotations

from typing import Any

from tasks.celery_app import app
from tasks.runner import JobContext, run_job

ALLOCATE = "fewshot.test_allocate"


@app.task(name=ALLOCATE, bind=True, ignore_result=True)
def allocate(self, job_id: str) -> None:
    run_job(job_id, allocate_memory, worker=self.request.hostname)


def allocate_memory(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    import torch

    block = torch.empty(int(ctx.params["megabytes"]) * 2**20, dtype=torch.uint8)  # untouched: harmless without a cap
    return {"bytes": int(block.numel())}, []
