"""The anomaly methods the tool offers, what each needs and when to pick it. Torch-free: the web page, the CLI
and the job check read it before any model loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Method:
    """One method: its default model, what it reads, and the rule for its threshold when nothing calibrates it.

    `references`: "optional" (WinCLIP: good parts switch on WinCLIP+), "required" (AnomalyDINO compares with
    them), "join the set" (MuSc: good parts are scored with the others, and calibrate the threshold).
    `min_images`: a set method scores images against each other and needs at least this many (good parts
    included; MuSc: below 5, its interval average of the lowest 30 % of the others' distances is empty).
    `default_threshold` is used when no good parts or set calibrate one; None where the scores have no absolute
    meaning, so a verdict needs calibration (good parts or a batch).
    """

    name: str
    label: str
    default_preset: str
    references: Literal["optional", "required", "join the set"]
    min_images: int
    default_threshold: float | None
    when: str  # one line: when to pick it
    bf16_safe: bool = False  # maps within 1e-2 of float32 in bf16 (bench/anomaly.py): bf16 by default where native


WINCLIP = Method("winclip", "WinCLIP", "winclip-vit-b-16-plus-240", "optional", 1, 0.5,
                 "one image or a video, no good parts needed (zero-shot); a few good parts make it WinCLIP+",
                 bf16_safe=True)  # ViT-B-16-plus-240: maps within 4e-4 of float32 (bench/anomaly.py)
MUSC = Method("musc", "MuSc", "musc-vit-l-14-336", "join the set", 5, None,
              "a batch of images or a video of one kind of part, no good parts needed: each image is scored "
              "against the others, so most of the set should be good",
              bf16_safe=True)  # ViT-L-14-336 at 518 px: maps within 4e-4 of float32
ANOMALYDINO = Method("anomalydino", "AnomalyDINO", "anomalydino-dinov2-small", "required", 1, None,
                     "one or more images when you have at least one good part (more good parts: a calibrated "
                     "threshold)", bf16_safe=True)  # DINOv2 ViT-S/14: maps within 8e-4 of float32
METHODS: dict[str, Method] = {m.name: m for m in (WINCLIP, MUSC, ANOMALYDINO)}
NO_REFERENCES = ("AnomalyDINO compares with good parts: add at least one image of a good part, or use WinCLIP or "
                 "MuSc, which need none.")
SET_RULE_MIN_IMAGES = 4  # fewer scores than this give no usable median and spread for the set rule


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        from engine.errors import UserInputError

        raise UserInputError(f"method: one of {', '.join(METHODS)}, not {name!r}.") from None
