"""Retention: finished jobs older than FEWSHOT_RETENTION_DAYS (default 30; 0 keeps everything) are deleted."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from tasks.store import get_store

log = logging.getLogger(__name__)
_started = threading.Event()


def retention_days() -> float:
    return float(os.environ.get("FEWSHOT_RETENTION_DAYS", 30))


def purge_expired(days: float | None = None) -> list[str]:
    """Delete finished jobs (inputs, outputs and record) that ended more than `days` ago."""
    days = retention_days() if days is None else days
    if days <= 0:
        return []
    removed = get_store().purge(days * 86400)
    if removed:
        log.info("retention: deleted %d jobs older than %g days", len(removed), days)
    return removed


def start_purger(interval_s: float = 3600.0, on_purged: Callable[[list[str]], object] | None = None,
                 also: Callable[[], object] | None = None) -> None:
    """Purge now and then every `interval_s` in a daemon thread (once per process). The web app passes
    `on_purged` (drop what it handed out for those jobs) and `also` (sweep its own upload folder)."""
    if _started.is_set():
        return
    _started.set()

    def loop() -> None:
        while True:
            try:
                removed = purge_expired()
                if on_purged is not None:
                    on_purged(removed)
                if also is not None:
                    also()
            except OSError:
                log.exception("retention: purge failed; will try again")
            threading.Event().wait(interval_s)

    threading.Thread(target=loop, name="fewshot-retention", daemon=True).start()
