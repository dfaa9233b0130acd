"""What one signed-in user keeps on the server, bounded by FEWSHOT_MAX_USER_STORAGE_MB.

It counts the folders of their ended jobs (inputs, outputs and the record, measured as each job ends: a job keeps
them until retention deletes it, and one upload named by many jobs is stored once per job), the input files of
their other jobs, and their saved reference sets and models (`tasks.named_folders`: a set of 2,000 copies of one
upload is 2,000 files on disk).
"""

from __future__ import annotations

from engine.errors import UserInputError
from engine.limits import max_user_storage_mb
from tasks.config import get_settings
from tasks.named_folders import USERS_DIR, owner_key
from tasks.retention import retention_days
from tasks.store import get_store, tree_bytes


def kept_bytes(owner: str) -> int:
    """Bytes `owner` keeps: their ended jobs' folders (inputs, outputs, records: counted as each ends), the stored
    inputs of the others, and their saved folders (half-saved ones, '.tmp-…', left out)."""
    saved = sum(tree_bytes(folder) for home in get_settings().artifact_dir.glob(f"*/{USERS_DIR}/{owner_key(owner)}")
                for folder in home.iterdir() if not folder.name.startswith("."))
    return saved + get_store().owned_bytes(owner)


def check_room(owner: str | None, adding: int, what: str) -> None:
    """Refuse `what` (`adding` bytes) when `owner` would keep more than the limit; without accounts, no limit."""
    if owner is None:
        return
    limit_mb, kept_mb, adding_mb = max_user_storage_mb(), kept_bytes(owner) / 2**20, adding / 2**20
    if kept_mb + adding_mb <= limit_mb:
        return
    days = retention_days()
    ageing = f"are deleted {days:g} days after they end" if days > 0 else "are kept until an administrator deletes them"
    raise UserInputError(
        f"You keep {kept_mb:.0f} MB on this server (input files of your jobs, saved reference sets and models) and "
        f"{what} adds {adding_mb:.0f} MB; at most {limit_mb} MB are kept per user (FEWSHOT_MAX_USER_STORAGE_MB). "
        f"Finished jobs {ageing}; delete finished jobs (Jobs tab) or saved sets or models you no longer use, or use "
        "fewer or smaller files.")
