"""A completion job's review, kept with its outputs: proposals.json is read, the decisions go to review.json and
the accepted set is exported in the three formats. Torch-free: the web process runs it."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from engine.completion.outputs import accepted_dataset, write_exports

REVIEW_FILE = "review.json"


def read_proposals(path: Path) -> dict[str, Any]:
    """A run's proposals.json."""
    return json.loads(path.read_text())


def read_review(path: Path) -> dict[str, list[int]] | None:
    """The decisions saved in a review.json, None when there is none readable."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def save_review(out_dir: Path, document: dict[str, Any], accepted: Collection[int],
                rejected: Collection[int] = ()) -> list[str]:
    """Write the decisions (review.json) and the existing plus accepted boxes as COCO, YOLO and VOC into a
    run's outputs folder; returns the names written. A proposal both accepted and rejected stays accepted."""
    review = {"accepted": sorted(set(accepted)), "rejected": sorted(set(rejected) - set(accepted))}
    (out_dir / REVIEW_FILE).write_text(json.dumps(review))
    return [REVIEW_FILE, *write_exports(accepted_dataset(document, review["accepted"]), out_dir, "accepted")]
