"""A bounded registry that keeps the newest: each owner's latest few and a most in all, the oldest pushed out.

What the web process holds for a user (a page following a job, an editor's pictures waiting for a run) is
bounded this way, so one user's flood pushes out only their own, and everyone's together stays bounded."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, ItemsView
from typing import Any


class LatestPerOwner:
    """Keys with a value, oldest first: each owner's latest `per_owner` (an owner of None has no bound of its own)
    and `most` in all."""

    def __init__(self, per_owner: int, most: int) -> None:
        self.per_owner, self.most = per_owner, most
        self._entries: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()  # key -> (owner, value)
        self._lock = threading.Lock()

    def add(self, key: Hashable, owner: Hashable, value: Any = None) -> list[tuple[Hashable, Any]]:
        """Keep `key` as the newest; returns the (key, value) pairs it pushed out."""
        with self._lock:
            self._entries[key] = (owner, value)
            self._entries.move_to_end(key)
            theirs = [k for k, (o, _) in self._entries.items() if o == owner] if owner is not None else []
            stale = theirs[:-self.per_owner] + list(self._entries)[:max(len(self._entries) - self.most, 0)]
            return [(old, self._entries.pop(old)[1]) for old in dict.fromkeys(stale) if old in self._entries]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def items(self) -> ItemsView[Hashable, Any]:
        """(key, value) of each kept, oldest first (a snapshot)."""
        with self._lock:
            return {key: value for key, (_, value) in self._entries.items()}.items()
