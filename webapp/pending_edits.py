"""The image editor's pictures waiting for a run, bounded per user.

Before each run can name them, Gradio's image editor sends the pictures of every edit (background, composite,
layers; a stroke is an edit) to a server function, which keeps them in the web process's memory under a new
random id until a run takes the latest; the earlier ones stay for good. A page used for an hour, or a client that
sends pictures under new ids (any signed-in user can: 8 x 10 MB took the process from 277 to 356 MB), would fill
that memory. `bound_pending_edits` keeps each user's latest `PER_EDITOR` edits per editor (an address's, for
users without an account) and `MOST` in all, forgetting older ones, and refuses a layer index the app's editors
never send (Gradio makes a list that long).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from webapp import serving
from webapp.latest import LatestPerOwner

PER_EDITOR = 2  # the edit a run is about to take, and the one being sent after it
MOST = 256
MAX_LAYER_INDEX = 8


class PendingEdits:
    """Which editor holds which user's edits, oldest first; an edit pushed out is deleted from its editor."""

    def __init__(self, per_editor: int = PER_EDITOR, most: int = MOST) -> None:
        self._edits = LatestPerOwner(per_editor, most)  # (user, editor block, edit) -> the copy holding it

    def keep(self, user: str, editor: Any, edit: str) -> None:
        """Keep `user`'s `edit`, held by `editor`: counted per editor of the page (its block id), whichever copy of it
        holds the edit (Gradio gives a page session its own copy of a component an event updated, so counting
        copies gave each session of a user two more)."""
        for (_, _, old), holder in self._edits.add((user, editor._id, edit), (user, editor._id), editor):
            holder.blob_storage.pop(old, None)


PENDING = PendingEdits()


def _owner(request: Any) -> str:
    """The signed-in user (read from the cookie, as the guard does: Gradio names no user to a server function), or
    without accounts the client's address."""
    scope = getattr(request, "request", request).scope
    user = serving.signed_in_user(scope)
    return f"user:{user}" if user is not None else f"address:{(scope.get('client') or ('unknown',))[0]}"


def bound_pending_edits() -> None:
    """Make every image editor of this process keep only the pending edits `PendingEdits` allows (once)."""
    accept = gr.ImageEditor.accept_blobs
    if getattr(accept, "bounded", False):
        return

    def accept_blobs(self: gr.ImageEditor, data: Any, request: gr.Request) -> None:
        fields = getattr(data, "data", None)
        if not isinstance(fields, dict) or "id" not in fields:
            raise gr.Error("An edit is sent as a form with its id, type and picture.")
        index = fields.get("index")
        if index not in (None, "", "null") and not (str(index).isdigit() and int(index) <= MAX_LAYER_INDEX):
            raise gr.Error(f"An edit's layer is numbered 0 to {MAX_LAYER_INDEX}.")
        accept(self, data)
        PENDING.keep(_owner(request), self, str(fields["id"]))

    accept_blobs._is_server_fn = True  # type: ignore[attr-defined] - what Gradio's @server marks
    accept_blobs.bounded = True  # type: ignore[attr-defined]
    gr.ImageEditor.accept_blobs = accept_blobs  # type: ignore[method-assign]
