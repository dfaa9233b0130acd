"""Every tool the job system runs, declared once: its Celery task name, its lane, and the engine module
that holds its contract (`Params`, `Inputs`, `Result`, `run`: see `engine.params`).

Two lanes, two queues: quick jobs (inspection, completion, prediction) never wait behind long ones
(training, evaluation of whole sets, diffusion insertion). Imports nothing else of the project, so
any module may use it without pulling in the worker side; `contract(name)` imports the tool's
contract module, which is torch-free (torch is imported inside `run`).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import NamedTuple

QUICK, LONG = "quick", "long"
LANES = (QUICK, LONG)


class Tool(NamedTuple):
    task: str
    lane: str
    contract: str  # engine module exporting Params, Inputs, Result and run
    custom_task: bool = False  # tasks/<tool>.py registers the task (worker-side glue around the contract's run)


def _tool(name: str, lane: str, contract: str, custom_task: bool = False) -> Tool:
    return Tool(f"fewshot.{name}", lane, contract, custom_task)


TOOLS: dict[str, Tool] = {
    "anomaly": _tool("anomaly", QUICK, "engine.anomaly.inspect_images"),
    "anomaly_video": _tool("anomaly_video", QUICK, "engine.anomaly.inspect_video"),
    "completion": _tool("completion", QUICK, "engine.completion.complete", custom_task=True),  # saved detectors
    "finetune_predict": _tool("finetune_predict", QUICK, "engine.finetune.predict", custom_task=True),
    "video_frame": _tool("video_frame", QUICK, "engine.video_frame"),  # a frame to draw on (insertion, completion)
    "anomaly_evaluate": _tool("anomaly_evaluate", LONG, "engine.anomaly.evaluate"),
    "completion_evaluate": _tool("completion_evaluate", LONG, "engine.completion.evaluate", custom_task=True),
    "insertion": _tool("insertion", LONG, "engine.insertion.insert"),  # diffusion: minutes per image on a CPU
    "finetune_classify": _tool("finetune_classify", LONG, "engine.finetune.classify", custom_task=True),
    "finetune_detect": _tool("finetune_detect", LONG, "engine.finetune.detect", custom_task=True),
    "finetune_kshot": _tool("finetune_kshot", LONG, "engine.finetune.kshot"),  # one training per seed
    "weights_download": _tool("weights_download", LONG, "engine.weights_download"),  # gigabytes: minutes
}


def contract(name: str) -> ModuleType:
    """The engine module of a tool's contract (its `Params`, `Inputs`, `Result`, `run`)."""
    return importlib.import_module(TOOLS[name].contract)
