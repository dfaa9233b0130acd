"""One Celery task per tool of the registry that declares a contract: the message carries the job id only,
the inputs are read from the artifact store, the engine's `run` computes, and its `Result` is recorded."""

from __future__ import annotations

from typing import Any

from tasks.celery_app import app
from tasks.registry import TOOLS, contract
from tasks.runner import JobBody, JobContext, run_job


def run_contract(ctx: JobContext, params: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The job body of every tool with a contract: typed parameters and inputs in, a typed result out.
    `params` replaces the job's own where a hand-written task adds what only the worker knows."""
    kind = contract(ctx.job.tool)
    params = kind.Params.from_dict(ctx.params if params is None else params)
    inputs = kind.Inputs.from_roles(ctx.input_files)
    result = kind.run(inputs, params, ctx.output_dir, ctx.progress)
    return result.to_json(), list(result.outputs)


def register(name: str, body: JobBody = run_contract) -> None:
    """The Celery task of tool `name`: its job runs `body` (tools with worker-side glue pass their own)."""

    def entry(self, job_id: str) -> None:
        run_job(job_id, body, worker=self.request.hostname)

    entry.__name__ = entry.__qualname__ = name  # before decorating: the task proxy's name cannot be set
    app.task(name=TOOLS[name].task, bind=True, ignore_result=True)(entry)


for _name, _tool in TOOLS.items():
    if not _tool.custom_task:  # custom ones: tasks/<tool>.py
        register(_name)
