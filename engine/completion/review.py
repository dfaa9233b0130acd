"""A completion job's review, kept with its outputs: proposals.json is read, the decisions go to review.json and
the accepted set is exported in the three formats. Torch-free: the web process runs it."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from engine.completion.outputs import accepted_dataset, write_exports
from engine.files import write_atomically

REVIEW_FILE = "review.json"


def read_proposals(path: Path) -> dict[str, Any]:
    """A run's proposals.json."""
    return json.loads(path.read_text())


def read_review(path: Path) -> dict[str, Any] | None:
    """The decisions saved in a review.json, None when there is none readable."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def decisions(accepted: Collection[int], rejected: Collection[int] = (),
              edited: dict[str, dict[str, Any]] | None = None,
              added: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A review as saved: accepted and rejected ids (accepted wins), the accepted proposals' edits (box [x, y, w, h]
    in image pixels and class, by id as text) and the boxes the reviewer added ({image, box, category})."""
    accepted = sorted(set(accepted))
    return {"accepted": accepted, "rejected": sorted(set(rejected) - set(accepted)),
            "edited": {k: v for k, v in (edited or {}).items() if int(k) in accepted}, "added": list(added or [])}


def save_decisions(out_dir: Path, review: dict[str, Any]) -> list[str]:
    """Write the decisions alone (review.json), as each one is made; returns the name written. Written beside and
    renamed over the last, so a reload reading it meanwhile gets the last decisions whole, never none of them."""
    write_atomically(out_dir / REVIEW_FILE, json.dumps(decisions(**review)))
    return [REVIEW_FILE]


def save_review(out_dir: Path, document: dict[str, Any], accepted: Collection[int],
                rejected: Collection[int] = (), edited: dict[str, dict[str, Any]] | None = None,
                added: list[dict[str, Any]] | None = None) -> list[str]:
    """Write the decisions (review.json) and the existing plus accepted (and added) boxes as COCO, YOLO and VOC into
    a run's outputs folder; returns the names written."""
    review = decisions(accepted, rejected, edited, added)
    save_decisions(out_dir, review)
    return [REVIEW_FILE, *write_exports(accepted_dataset(document, review["accepted"], review["edited"],
                                                         review["added"]), out_dir, "accepted")]
