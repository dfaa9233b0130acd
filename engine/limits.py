"""Bounds on what one upload or parameter may ask for, checked while reading, before any heavy work.

A few hundred hostile bytes can otherwise ask for gigabytes: YAML aliases that expand a class name,
a label file of a million lines, a million COCO boxes, each multiplied later by proposals and exports.
Each limit is read from its FEWSHOT_* variable at call time (like engine.media.max_image_pixels), so
an operator can change it without a code change; every refusal names the variable.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from engine.errors import UserInputError

MAX_SEED = 2**32 - 1  # every generator the tools seed (torch, numpy, random) takes this range


def int_setting(name: str, default: int) -> int:
    """The integer in variable `name`; unset or empty: `default`."""
    return int(os.environ.get(name) or default)


def max_annotation_bytes() -> int:
    """Largest annotation file (COCO JSON, YOLO txt, VOC XML, data.yaml) read: FEWSHOT_MAX_ANNOTATION_MB."""
    return int_setting("FEWSHOT_MAX_ANNOTATION_MB", 50) * 2**20


def max_boxes_per_image() -> int:
    """Most boxes (YOLO lines, VOC objects, COCO annotations) on one image: FEWSHOT_MAX_BOXES_PER_IMAGE."""
    return int_setting("FEWSHOT_MAX_BOXES_PER_IMAGE", 1000)


def max_boxes() -> int:
    """Most boxes in one set (also the most image entries of a COCO file): FEWSHOT_MAX_BOXES."""
    return int_setting("FEWSHOT_MAX_BOXES", 100_000)


def max_classes() -> int:
    """Most classes in one set: FEWSHOT_MAX_CLASSES."""
    return int_setting("FEWSHOT_MAX_CLASSES", 1000)


def max_class_name_chars() -> int:
    """Longest class name: FEWSHOT_MAX_CLASS_NAME_CHARS."""
    return int_setting("FEWSHOT_MAX_CLASS_NAME_CHARS", 100)


def max_proposals() -> int:
    """Most proposals one completion job may produce (images x max_per_image): FEWSHOT_MAX_PROPOSALS.

    The default lets the longest sampled video (FEWSHOT_MAX_VIDEO_FRAMES, 3000 by default) run at the
    default 100 proposals per image, so at the defaults a video is bounded by its frames alone.
    """
    return int_setting("FEWSHOT_MAX_PROPOSALS", 300_000)


def max_set_feature_bytes() -> int:
    """Most memory the features of one set scored against itself (MuSc) may take: FEWSHOT_MUSC_MEMORY_MB, by
    default half of this machine's physical memory."""
    half = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**21
    return int_setting("FEWSHOT_MUSC_MEMORY_MB", half) * 2**20


def max_reference_images() -> int:
    """Most images in one saved reference set: FEWSHOT_MAX_REFERENCE_IMAGES. Saving decodes each one in the web
    process, and one upload may be named any number of times."""
    return int_setting("FEWSHOT_MAX_REFERENCE_IMAGES", 200)


def max_user_storage_mb() -> int:
    """Most MB one signed-in user keeps on the server (their jobs' inputs, saved sets and models):
    FEWSHOT_MAX_USER_STORAGE_MB (tasks.quota)."""
    return int_setting("FEWSHOT_MAX_USER_STORAGE_MB", 20000)


def max_params_bytes() -> int:
    """Largest a job's parameters may be as JSON: FEWSHOT_MAX_PARAMS_KB. They are stored in the job's record, which
    every job list reads, so a 5 MB "object name" would slow every user's Jobs tab and submissions."""
    return int_setting("FEWSHOT_MAX_PARAMS_KB", 1024) * 1024


def check_params_size(params: dict[str, Any]) -> None:
    """Refuse parameters past max_params_bytes(), naming the largest one."""
    size, limit = len(json.dumps(params, default=str)), max_params_bytes()
    if size > limit:
        largest = max(params, key=lambda name: len(json.dumps(params[name], default=str)))
        raise UserInputError(f"The parameters of this job take {size:,} bytes, most of them {largest}; at most "
                             f"{limit:,} are accepted (FEWSHOT_MAX_PARAMS_KB).")


def too_many(where: str, what: str, limit: int, setting: str) -> UserInputError:
    """The refusal for a count over its limit, naming the file or parameter and the setting."""
    return UserInputError(f"{where}: more than {limit:,} {what}; at most {limit:,} are accepted ({setting}).")


def class_name_problem(name: str) -> str | None:
    """Why a class name cannot be used (empty or too long), or None."""
    limit = max_class_name_chars()
    if not name.strip():
        return "a class name is empty"
    if len(name) > limit:
        return (f"a class name of {len(name):,} characters; at most {limit:,} are accepted "
                "(FEWSHOT_MAX_CLASS_NAME_CHARS)")
    return None


def seed_problem(value: Any, what: str = "seed") -> str | None:
    """Why a value is not a seed every generator can take (torch, numpy, random: 0 to 2**32-1), or None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        return f"{what} must be a whole number from 0 to {MAX_SEED:,} (2**32-1), not {str(value)[:40]}"
    return None


def quoted(value: Any, limit: int = 60) -> str:
    """A value as messages quote it: repr, cut to `limit` characters (a hostile value can be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


def finite_number(value: Any, what: str) -> float:
    """A finite float from a number or its text; NaN, infinities and non-numbers are refused by name."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise UserInputError(f"{what} must be a finite number, not {quoted(value)}.")
    return number
