"""What one user's job count costs the web process: a Jobs-table refresh and a storage-quota check.

    python bench/jobs_listing.py [--jobs 500] [--images 60] [--repeats 5]

Stores `--jobs` finished jobs of one user (records shaped like a finished inspection of `--images` images:
inputs, outputs and per-image results, about 70 KB at 60) in a temporary artifact directory, then times, in
milliseconds (median of the repeats, the first call separately: a fresh process reads every record once):
the Jobs table's listing (`tasks.client.list_jobs`, the 50 rows a page shows) and the quota check
(`tasks.quota.kept_bytes`, what runs inside the submission lock).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OWNER = "alice"


def store_jobs(count: int, images: int) -> None:
    """`count` finished jobs of OWNER, written as the store writes them."""
    from tasks.jobs import Job, Status
    from tasks.named_folders import owner_key
    from tasks.store import get_store

    store = get_store()
    start = time.time() - count
    for index in range(count):
        names = [f"{i:03d}_part_{i:03d}.png" for i in range(images)]
        job = Job(id=f"{index:032x}", tool="anomaly", params={"method": "winclip", "object_name": "part"},
                  owner=OWNER, created_at=start + index, started_at=start + index + 0.1,
                  finished_at=start + index + 0.5, status=Status.SUCCEEDED, progress=1.0, message="Done",
                  inputs=[f"images/{name}" for name in names], input_names={f"images/{n}": n for n in names},
                  outputs=[f"{n}_{kind}.png" for n in names for kind in ("map", "overlay", "card")],
                  result={"rows": [{"image": n, "score": 0.5, "anomalous": False, "threshold": 0.4,
                                    "notes": "x" * 400} for n in names]},
                  stored_bytes=1_000_000, lane="quick")
        store.owner_marks.add(job.id, owner_key(OWNER))
        store.job_dir(job.id).mkdir()
        store._write(job)


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(first call, median of the next `repeats`) in milliseconds."""
    times = []
    for _ in range(repeats + 1):
        begin = time.perf_counter()
        call()
        times.append((time.perf_counter() - begin) * 1000)
    return times[0], statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        os.environ["FEWSHOT_ARTIFACT_DIR"] = root
        from tasks import client, quota

        store_jobs(args.jobs, args.images)
        record = next(Path(root, "jobs").iterdir()) / "job.json"
        print(f"{args.jobs} finished jobs of one user, records of {record.stat().st_size / 1024:.0f} KB")
        for label, call in (("jobs listing (50 rows)", lambda: client.list_jobs(limit=50, owner=OWNER)),
                            ("quota check (kept_bytes)", lambda: quota.kept_bytes(OWNER))):
            first, median = timed(call, args.repeats)
            print(f"{label:26s} first {first:8.1f} ms   then {median:8.1f} ms (median of {args.repeats})")


if __name__ == "__main__":
    main()
