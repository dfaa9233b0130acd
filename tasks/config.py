"""Settings of the job system, read from the environment once per process."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tasks.registry import LONG, QUICK


@dataclass(frozen=True)
class Settings:
    """`redis_url` unset means embedded mode: the app process starts and supervises its own workers."""

    redis_url: str | None
    artifact_dir: Path
    quick_queue: str
    long_queue: str
    job_time_limit_s: int
    max_attempts: int

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    @property
    def broker_url(self) -> str:
        return self.redis_url or "filesystem://"

    @property
    def broker_dir(self) -> Path:
        """Embedded mode's queue: one file per message, so the app and its worker processes share it."""
        return self.artifact_dir / ".broker"

    @property
    def broker_display(self) -> str:
        """Broker URL with any password hidden, for messages and logs."""
        if not self.redis_url:
            return "embedded (worker processes of the app)"
        scheme, _, rest = self.redis_url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}" if "@" in rest else self.redis_url

    def queue_for(self, lane: str) -> str:
        return {QUICK: self.quick_queue, LONG: self.long_queue}[lane]

    @classmethod
    def from_env(cls) -> Settings:
        default_dir = Path.home() / ".local" / "share" / "fewshot-studio" / "artifacts"
        return cls(
            redis_url=os.environ.get("FEWSHOT_REDIS_URL") or None,
            artifact_dir=Path(os.environ.get("FEWSHOT_ARTIFACT_DIR") or default_dir).expanduser().resolve(),
            quick_queue=os.environ.get("FEWSHOT_QUICK_QUEUE") or QUICK,
            long_queue=os.environ.get("FEWSHOT_LONG_QUEUE") or LONG,
            job_time_limit_s=int(os.environ.get("FEWSHOT_JOB_TIME_LIMIT", 3 * 3600)),
            max_attempts=max(int(os.environ.get("FEWSHOT_MAX_ATTEMPTS", 2)), 1),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()


def job_memory_limit_mb() -> int:
    """FEWSHOT_JOB_MEMORY_MB: address space allowed to one job's process; 0 is no limit.

    `auto` (the default) is the machine's physical memory when jobs run on the CPU: a job that asks for
    more than the machine has then gets an out-of-memory error in its own process instead of waking the
    kernel's OOM killer. No limit with a GPU (CUDA and ROCm reserve huge address ranges that are not
    memory) or on macOS (the limit is not enforced there). Address space exceeds resident memory
    (torch alone maps about 3 GB), so a lower explicit value must leave room for that.
    """
    value = os.environ.get("FEWSHOT_JOB_MEMORY_MB", "auto").strip().lower()
    if value != "auto":
        return max(int(value), 0)
    device = os.environ.get("FEWSHOT_DEVICE", "auto").strip().lower()
    gpu_present = any(Path(p).exists() for p in ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/kfd"))
    if sys.platform == "darwin" or device.startswith(("cuda", "mps")) or (device == "auto" and gpu_present):
        return 0
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
