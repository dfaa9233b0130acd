"""The image editor's pending edits: each user's latest per editor, a bounded number in all."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from webapp.pending_edits import PendingEdits

BLOCKS = itertools.count()


def editor(block: int | None = None) -> SimpleNamespace:
    """An editor of the page (a new block id unless given: a session's copy has its editor's)."""
    return SimpleNamespace(_id=block if block is not None else next(BLOCKS), blob_storage={})


def sent(pending: PendingEdits, user: str, where: SimpleNamespace, edit: str) -> None:
    where.blob_storage[edit] = b"pictures"  # as Gradio's accept_blobs stores them
    pending.keep(user, where, edit)


def test_each_user_keeps_their_latest_edits_per_editor_and_older_ones_are_deleted() -> None:
    pending, image, anchor = PendingEdits(per_editor=2, most=100), editor(), editor()
    sent(pending, "alice", image, "a0")
    sent(pending, "bob", image, "b0")
    sent(pending, "alice", anchor, "x0")
    for index in range(1, 50):  # a page used for long, or a client flooding new ids
        sent(pending, "alice", image, f"a{index}")
    assert set(image.blob_storage) == {"b0", "a48", "a49"}  # bob's edit stays: a flood pushes out only its own
    assert set(anchor.blob_storage) == {"x0"}


def test_at_most_most_edits_are_kept_in_all() -> None:
    pending, image = PendingEdits(per_editor=2, most=5), editor()
    for index in range(8):
        sent(pending, f"page:{index}", image, f"e{index}")
    assert set(image.blob_storage) == {"e3", "e4", "e5", "e6", "e7"}


def test_a_page_sessions_own_copy_of_an_editor_counts_as_the_editor() -> None:
    """Gradio gives a session its own copy of a component an event updated: one user's 40 sessions held 2 edits
    each (a signed-in client took the web process from 0.9 to 1.65 GB)."""
    pending = PendingEdits(per_editor=2, most=100)
    copies = [editor(block=225) for _ in range(40)]
    for index, copy in enumerate(copies):
        sent(pending, "erin", copy, f"e{index}")
    assert sum(len(copy.blob_storage) for copy in copies) == 2
    assert set(copies[-1].blob_storage) | set(copies[-2].blob_storage) == {"e38", "e39"}
