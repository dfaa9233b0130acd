"""Progress reporting from engine calls, with no dependency on the job system.

A callback receives (fraction done in [0, 1], short message). The job system's callback raises
`Cancelled` once the user has asked to stop: engine code calls it between steps and lets it
propagate (a loop that keeps its best result so far catches `Cancelled` alone, never a broader
exception: a failed store write is not a cancel).
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised from a progress report once the user has asked to cancel."""


def ignore_progress(fraction: float, message: str) -> None:
    """Default callback: report nothing."""


def sub_progress(callback: ProgressCallback, start: float, end: float) -> ProgressCallback:
    """A callback for a sub-step that maps its own [0, 1] onto [start, end] of the parent."""

    def report(fraction: float, message: str) -> None:
        callback(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return report


def duration(seconds: float) -> str:
    """'45 s', '3 min', '1 h 5 min': a time left rounded as a person reads a countdown."""
    seconds = max(1, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
