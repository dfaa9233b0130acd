"""The training loop shared by the few-shot classifier and the few-shot detector.

What a model brings (`Objective`): the loss of one training batch, its held-out metrics, which
metrics are better, and a copy of what training changes. What the loop owns, the same for both:
AdamW on the trainable parameters, a NaN/inf guard (nothing is to be saved then), evaluation every
few steps with the best checkpoint kept, early stopping after `patience` evaluations without
improvement, the time budget, and cancel: when the progress callback raises (a job's cancel), the
run stops and the best checkpoint so far is loaded, as at any other stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from engine.errors import UserInputError
from engine.finetune import classify, detect
from engine.finetune.training import HistoryCallback, pace_text
from engine.progress import Cancelled, ProgressCallback, ignore_progress

Metrics = dict[str, Any]


class Checkpointed(Protocol):
    """A model that can copy out and load back what training changes."""

    def trainable_state(self) -> dict[str, torch.Tensor]: ...

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None: ...


@dataclass
class Objective:
    """One training run's model-specific parts.

    `evaluate` is None when nothing is held out: then there is nothing to select on, the last step
    is kept and early stopping never happens. `columns` turns metrics (or None, at steps without an
    evaluation) into the history's columns; `rank` orders metrics, higher is better. `groups` are AdamW
    parameter groups with settings of their own (Selective LoRA's block scores), taken out of `parameters`.
    """

    model: Checkpointed
    parameters: Iterable[torch.nn.Parameter]
    batch_loss: Callable[[], torch.Tensor]
    evaluate: Callable[[], Metrics] | None
    columns: Callable[[Metrics | None], dict[str, Any]]
    rank: Callable[[Metrics], tuple[float, ...]]
    max_grad_norm: float | None = None
    groups: Sequence[dict[str, Any]] = ()


@dataclass
class TrainResult:
    """The curves, and the held-out metrics before training (`baseline`) and of the checkpoint kept (`best`)."""

    history: list[dict[str, Any]] = field(default_factory=list)
    baseline: Metrics | None = None
    best: Metrics | None = None
    best_step: int = 0
    steps_run: int = 0
    stopped: str = "completed"  # completed | early stopping | time budget | cancelled
    seconds: float = 0.0


def epoch_batches(count: int, batch_size: int, generator: torch.Generator):
    """Endless seeded batches of indices: each pass over the data in a new random order."""
    order: list[int] = []
    while True:
        batch = []
        while len(batch) < min(batch_size, count):
            if not order:
                order = torch.randperm(count, generator=generator).tolist()
            batch.append(order.pop())
        yield batch


def fit(objective: Objective, settings: classify.Params | detect.Params, progress: ProgressCallback = ignore_progress,
        on_history: HistoryCallback | None = None) -> TrainResult:
    """Train in place and leave the best checkpoint loaded; history row 0 is the model before training.

    A NaN or infinite loss raises UserInputError (lower the learning rate); the model is then not to be saved.
    """
    grouped = {id(p) for group in objective.groups for p in group["params"]}
    parameters = [p for p in objective.parameters if p.requires_grad and id(p) not in grouped]
    optimizer = torch.optim.AdamW([{"params": parameters}, *objective.groups], lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    result = TrainResult()
    started = time.monotonic()
    best = result.baseline = objective.evaluate() if objective.evaluate else None
    best_state = objective.model.trainable_state() if best is not None else None
    result.history.append({"step": 0, "loss": None, **objective.columns(best)})
    stale, steps_started = 0, time.monotonic()  # the pace is of the steps, after the baseline evaluation
    for step in range(1, settings.steps + 1):
        loss = objective.batch_loss()
        if not torch.isfinite(loss):
            raise UserInputError(f"Training diverged: the loss became {loss.item()} at step {step}. Lower the "
                                 f"learning rate (now {settings.learning_rate}); no model was saved.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if objective.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(parameters, objective.max_grad_norm)
        optimizer.step()
        result.steps_run = step
        metrics = None
        if objective.evaluate and (step % settings.eval_every == 0 or step == settings.steps):
            metrics = objective.evaluate()
            if objective.rank(metrics) > objective.rank(best):
                best, best_state, result.best_step, stale = metrics, objective.model.trainable_state(), step, 0
            else:
                stale += 1
        elif not objective.evaluate:
            result.best_step = step
        record = {"step": step, "loss": loss.item(), **objective.columns(metrics)}
        result.history.append(record)
        if on_history is not None:
            on_history(result.history)
        if step == settings.steps:  # every step ran: whatever patience or the budget would have said next
            break
        if stale >= settings.patience:
            result.stopped = "early stopping"
            break
        now = time.monotonic()
        if now - started > settings.time_budget_s:
            result.stopped = "time budget"
            break
        pace = pace_text(step, settings.steps, now - steps_started, settings.time_budget_s - (now - started))
        try:
            progress(step / settings.steps, f"Step {step}/{settings.steps} · loss {record['loss']:.4f}{pace}")
        except Cancelled:  # the user asked to stop: keep the best checkpoint so far
            result.stopped = "cancelled"
            break
    if best_state is not None:
        objective.model.load_trainable_state(best_state)
    result.best = best
    result.seconds = time.monotonic() - started
    return result
