"""Fine-tuning jobs: the worker-side glue around the engine's contracts (engine.finetune.classify, .detect,
.predict), which `tasks.tools` cannot do generically: models live in the job owner's model registry, so a
training job checks the name is free and saves the model there, and a prediction job finds the model there.
Training also streams its curves into the job record for the live plot.

Cancel rule: a cancel during training stops it at the next step; the best checkpoint so far is
evaluated and saved as the model, and the job ends *succeeded* with `stopped: "cancelled"` in its
result (the curves and metrics stay visible). A cancel before training starts cancels the job.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from engine.finetune.training import HistoryCallback
from tasks.jobs import Job
from tasks.registry import contract
from tasks.runner import JobContext
from tasks.tools import register

LIVE_INTERVAL_S = 0.5


def _live_writer(ctx: JobContext) -> HistoryCallback:
    """Copies the training history into the job record (at most twice a second) for the live plot."""
    last = [0.0]

    def write(history: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        if now - last[0] < LIVE_INTERVAL_S:
            return
        last[0] = now
        snapshot = [dict(row) for row in history]

        def change(job: Job) -> None:
            job.live = {"history": snapshot}

        ctx.store.update(ctx.job.id, change)

    return write


def train(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    """Train a classifier or detector (the job's tool) and register the model under its name, as the owner's."""
    from engine.models.saved import MODEL_DIR
    from tasks import finetune_models

    kind = contract(ctx.job.tool)
    params = kind.Params.from_dict(ctx.params)
    finetune_models.check_free(params.model_name, owner=ctx.job.owner)
    result = kind.run(kind.Inputs.from_roles(ctx.input_files), params, ctx.output_dir, ctx.progress,
                      on_history=_live_writer(ctx))
    finetune_models.save(params.model_name, ctx.output_dir / MODEL_DIR, owner=ctx.job.owner)  # private to its owner
    shutil.rmtree(ctx.output_dir / MODEL_DIR)  # registered under models/; model.zip is the download
    return result.to_json(), result.outputs


def predict(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    """Use a saved model the owner may use: their own, or one another user shared."""
    from tasks import finetune_models

    kind = contract("finetune_predict")
    params = kind.Params.from_dict(ctx.params)
    model_dir = finetune_models.path(params.model, owner=ctx.job.owner)
    result = kind.run(kind.Inputs.from_roles(ctx.input_files), params, ctx.output_dir, ctx.progress, model_dir)
    return result.to_json(), result.outputs


for _kind, _body in (("finetune_classify", train), ("finetune_detect", train), ("finetune_predict", predict)):
    register(_kind, _body)
