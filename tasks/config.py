"""Settings of the job system, read from the environment once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """`redis_url` unset means embedded mode: the app process hosts the worker."""

    redis_url: str | None
    artifact_dir: Path
    queue: str
    job_time_limit_s: int

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    @property
    def broker_url(self) -> str:
        return self.redis_url or "memory://"

    @property
    def broker_display(self) -> str:
        """Broker URL with any password hidden, for messages and logs."""
        if not self.redis_url:
            return "embedded (in-process)"
        scheme, _, rest = self.redis_url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}" if "@" in rest else self.redis_url

    @classmethod
    def from_env(cls) -> Settings:
        default_dir = Path.home() / ".local" / "share" / "fewshot-studio" / "artifacts"
        return cls(
            redis_url=os.environ.get("FEWSHOT_REDIS_URL") or None,
            artifact_dir=Path(os.environ.get("FEWSHOT_ARTIFACT_DIR") or default_dir).expanduser().resolve(),
            queue=os.environ.get("FEWSHOT_QUEUE", "gpu"),
            job_time_limit_s=int(os.environ.get("FEWSHOT_JOB_TIME_LIMIT", 3 * 3600)),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
