"""One Celery task per tool of the registry that declares a contract: the message carries the job id only,
the inputs are read from the artifact store, the engine's `run` computes, and its `Result` is recorded."""

from __future__ import annotations

from typing import Any

from tasks.celery_app import app
from tasks.registry import TOOLS, contract
from tasks.runner import JobContext, run_job


def run_contract(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    """The job body of every tool with a contract: typed parameters and inputs in, a typed result out."""
    kind = contract(ctx.job.tool)
    params = kind.Params.from_dict(ctx.params)
    inputs = kind.Inputs.from_roles(ctx.input_files)
    result = kind.run(inputs, params, ctx.output_dir, ctx.progress)
    return result.to_json(), list(result.outputs)


def _register(name: str, task_name: str) -> None:
    def entry(self, job_id: str) -> None:
        run_job(job_id, run_contract, worker=self.request.hostname)

    entry.__name__ = entry.__qualname__ = name  # before decorating: the task object's name is read-only
    app.task(name=task_name, bind=True, ignore_result=True)(entry)


for _name, _tool in TOOLS.items():
    if _tool.contract is not None:
        _register(_name, _tool.task)
