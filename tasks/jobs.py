"""The job record: what was asked, where it stands, what came out."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


@dataclass
class Job:
    """A job as stored in `<artifact dir>/jobs/<id>/job.json`; inputs and outputs are file keys
    relative to the job's `inputs/` and `outputs/` folders (engine.naming.file_key), and
    `input_names` keeps each input's display name, told apart from same-named ones."""

    id: str
    tool: str
    params: dict[str, Any]
    status: Status = Status.QUEUED
    progress: float = 0.0
    message: str = "Waiting for a worker"
    error: str | None = None
    inputs: list[str] = field(default_factory=list)
    input_names: dict[str, str] = field(default_factory=dict)  # stored input -> the name the user gave it
    outputs: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)  # what a running job streams to the UI (training curves)
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    worker: str | None = None
    owner: str | None = None  # the signed-in user who submitted it; None on a local, single-user app
    lane: str | None = None  # "quick" or "long" (tasks.registry): its queue, and the jobs it waits behind
    name: str | None = None  # what its owner calls it (tasks.client.submit / rename); shown beside the id
    stored_bytes: int | None = None  # its folder (inputs, outputs, record) once it ended: its owner keeps them

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["status"] = Status(known.get("status", Status.QUEUED))
        return cls(**known)
