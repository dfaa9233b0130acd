"""Errors a user can act on.

Every message says what was wrong and what is accepted, so the UI, the API and the CLI can
show it as it is, without a traceback.
"""

from __future__ import annotations


class UserInputError(ValueError):
    """Bad input from the user: a file, a parameter, a preset name."""


class WeightsNotFoundError(RuntimeError):
    """A preset's real weights are not on this machine and cannot be downloaded."""


def reason(exc: BaseException) -> str:
    """An exception's text for a user message: an OSError's text names the server path, so only its cause
    (strerror) is shown."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return exc.strerror or type(exc).__name__
    return str(exc)
