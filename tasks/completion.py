"""Celery tasks of annotation completion: the contracts' `run` (engine.completion.complete / .evaluate), after
the worker finds the folder of a saved detector the job names (params.detector_model) as its owner may use it."""

from __future__ import annotations

from typing import Any

from tasks.runner import JobContext
from tasks.tools import register, run_contract


def with_detector_folder(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    """The contract's run, with params.detector set to the folder of the saved detector named by
    params.detector_model, looked up as the job's owner (own or shared)."""
    if ctx.params.get("detector"):  # refused at submit; a job stored before that rule is refused here
        from engine.completion.complete import DETECTOR_FOLDER_IN_A_JOB
        from engine.errors import UserInputError

        raise UserInputError(DETECTOR_FOLDER_IN_A_JOB)
    name = ctx.params.get("detector_model")
    if not name:
        return run_contract(ctx)
    from tasks import finetune_models

    return run_contract(ctx, {**ctx.params, "detector": str(finetune_models.path(str(name), owner=ctx.job.owner))})


for _kind in ("completion", "completion_evaluate"):
    register(_kind, with_detector_folder)
