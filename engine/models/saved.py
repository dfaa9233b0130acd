"""A saved fine-tuned model on disk: `model.json` (what it is) and `weights.safetensors` (what training changed).

Classifiers and detectors are saved the same way and told apart by `task` in model.json ("classify",
the default of files written before detectors existed, or "detect"). Torch-free: the web process
reads model.json when a model file is uploaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from engine.errors import UserInputError, reason
from engine.limits import max_classes

MODEL_DIR = "model"  # a run's model folder, beside its metrics.json, history.csv and model.zip
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
FORMAT_VERSION = 1
RUN_META = ("name", "base_preset", "settings", "metrics", "best_step", "stopped", "train_images",
            "held_out_images", "created_at")
TASKS = {"classify": "classifier", "detect": "detector"}
_REQUIRED = {"classify": ("classes", "base_preset", "logit_scale"), "detect": ("classes", "base_preset", "input")}


def task_of(meta: dict[str, Any]) -> str:
    return meta.get("task", "classify")


def _field_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with the type of a field that is read outside the model's own job, or None."""
    classes, most = meta["classes"], max_classes()
    if not isinstance(classes, list) or not 0 < len(classes) <= most or not all(isinstance(c, str) for c in classes):
        return f"classes must be a list of 1 to {most:,} class names (FEWSHOT_MAX_CLASSES)"
    if not isinstance(meta["base_preset"], str):
        return "base_preset must be a preset name"
    created = meta.get("created_at", 0)
    if isinstance(created, bool) or not isinstance(created, int | float) or not math.isfinite(created):
        return "created_at must be a time in seconds"
    return None


def read_meta(directory: Path, task: str | None = None) -> dict[str, Any]:
    """model.json of a saved model, checked to be complete; with `task`, also that it is that kind of model."""
    try:
        meta = json.loads((directory / MODEL_FILE).read_text())
    except (OSError, ValueError):
        raise UserInputError(f"{directory.name}: not a fine-tuned model (no readable {MODEL_FILE}).") from None
    if not isinstance(meta, dict) or task_of(meta) not in TASKS:
        raise UserInputError(f"{directory.name}: {MODEL_FILE} does not describe a classifier or a detector.")
    missing = [key for key in _REQUIRED[task_of(meta)] if key not in meta]
    if missing or meta.get("format_version") != FORMAT_VERSION:
        raise UserInputError(f"{directory.name}: {MODEL_FILE} is from another version or incomplete "
                             f"(missing: {', '.join(missing) or 'format_version ' + str(FORMAT_VERSION)}).")
    problem = _field_problem(meta)
    if problem:  # listing every user's models reads these (sorted, joined), so a wrong type would break it for all
        raise UserInputError(f"{directory.name}: {MODEL_FILE} is damaged ({problem}).")
    if task is not None:
        check_task({"name": directory.name, **meta}, task)
    return meta


def check_task(meta: dict[str, Any], task: str) -> None:
    """Refuse a model (its model.json) that is not a `task` one ("classify" or "detect"), by name."""
    if task_of(meta) != task:
        raise UserInputError(f"'{meta['name']}' is a {TASKS[task_of(meta)]}, not a {TASKS[task]}: pick a "
                             f"{TASKS[task]}.")


def write_model(directory: Path, weights: dict[str, Any], meta: dict[str, Any], task: str, **fields: Any) -> Path:
    """Write what training changed (`weights`, tensors; never the frozen backbone) and model.json: `meta`, then
    the kind of model, the format version and its own `fields`."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(directory / WEIGHTS_FILE))
    record = {**meta, "task": task, "format_version": FORMAT_VERSION, **fields}
    (directory / MODEL_FILE).write_text(json.dumps(record, indent=1))
    return directory


def read_weights(directory: Path, device: Any) -> dict[str, Any]:
    """The saved tensors on `device`, refused with a message when the file is missing or damaged."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(directory / WEIGHTS_FILE), device=str(device))
    except (OSError, SafetensorError) as exc:
        raise UserInputError(f"{directory.name}: the weights file is missing or damaged ({reason(exc)}).") from None
