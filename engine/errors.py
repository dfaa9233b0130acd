"""Errors a user can act on.

Every message says what was wrong and what is accepted, so the UI, the API and the CLI can
show it as it is, without a traceback.
"""

from __future__ import annotations


class UserInputError(ValueError):
    """Bad input from the user: a file, a parameter, a preset name."""


class WeightsNotFoundError(RuntimeError):
    """A preset's real weights are not on this machine and cannot be downloaded."""
