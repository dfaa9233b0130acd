"""Which Celery task runs each tool, and in which lane, declared once for the web side and the workers.

Two lanes, two queues: quick jobs (inspection, completion, prediction) never wait behind long ones
(training, evaluation of whole sets, diffusion insertion). Imports nothing else of the project, so
any module may use it without pulling in the worker side.
"""

from __future__ import annotations

from typing import NamedTuple

QUICK, LONG = "quick", "long"
LANES = (QUICK, LONG)


class Tool(NamedTuple):
    task: str
    lane: str


TOOLS: dict[str, Tool] = {
    "anomaly": Tool("fewshot.anomaly", QUICK),
    "anomaly_video": Tool("fewshot.anomaly_video", QUICK),
    "completion": Tool("fewshot.completion", QUICK),
    "finetune_predict": Tool("fewshot.finetune_predict", QUICK),
    "anomaly_evaluate": Tool("fewshot.anomaly_evaluate", LONG),
    "completion_evaluate": Tool("fewshot.completion_evaluate", LONG),
    "insertion": Tool("fewshot.insertion", LONG),  # diffusion: minutes per image on a CPU, even for one image
    "finetune_classify": Tool("fewshot.finetune_classify", LONG),
    "finetune_detect": Tool("fewshot.finetune_detect", LONG),
}
