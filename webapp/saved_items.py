"""The controls of saved things a user owns (reference sets, fine-tuned models): the dropdown as the signed-in
user sees it (their own, then others' shared ones), a share toggle and a delete button, for any `NamedFolders`.

One implementation for both tabs, so a set and a model follow the same rules on the page: only the owner may
share or delete; another user's shared one is read-only and says whose it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import gradio as gr
from gradio.context import Context

from tasks.named_folders import NamedFolders
from webapp.views import owner_of, text

SHARE_INFO = "Everyone signed in can then use it (and download a model), not delete it."

# per app being built: the dropdowns listing saved things, each with the function that fills it for a request
_LISTINGS: WeakKeyDictionary[gr.Blocks, list[tuple[gr.Dropdown, Callable[[gr.Request], Any]]]] = WeakKeyDictionary()


def refresh_on_load(refresh: Callable[[gr.Request], Any], dropdown: gr.Dropdown, **options: Any) -> None:
    """Fill `dropdown` with `refresh(request)` for the signed-in user when the page loads (the built page is the same
    for everyone), and again whenever they switch tabs (`refresh_on_tab_change`): what was saved, deleted or trained
    elsewhere (another tab, another browser window) is offered without a reload. `options` go to the load event."""
    gr.on(None, refresh, None, dropdown, show_progress="hidden", **options)
    _LISTINGS.setdefault(Context.root_block, []).append((dropdown, refresh))


def refresh_of(dropdown: gr.Dropdown) -> Callable[[gr.Request], Any]:
    """The function registered with `refresh_on_load` that fills `dropdown` (to fill it again after a change)."""
    return next(refresh for listed, refresh in _LISTINGS.get(Context.root_block, []) if listed is dropdown)


def refresh_on_tab_change(tabs: gr.Tabs) -> None:
    """Refill every dropdown registered with `refresh_on_load` each time the user picks another tab of `tabs`."""
    listings = list(_LISTINGS.get(Context.root_block, []))
    if not listings:
        return

    def refresh_all(request: gr.Request) -> Any:
        updates = tuple(refresh(request) for _, refresh in listings)
        return updates if len(updates) > 1 else updates[0]

    tabs.change(refresh_all, None, [dropdown for dropdown, _ in listings], api_visibility="private",
                show_progress="hidden")


def label(meta: dict[str, Any], details: str) -> str:
    """A dropdown label: name, details, and whose it is when it is not one's own private one."""
    if not meta["mine"]:
        return f"{meta['name']} ({details}) · shared by {meta['owner']}"
    return f"{meta['name']} ({details})" + (" · shared with everyone" if meta["shared"] else "")


@dataclass(frozen=True)
class SavedControls:
    """Choices, sharing and deletion of one kind of saved thing; `details` says what one is, in its label."""

    folders: NamedFolders
    details: Callable[[dict[str, Any]], str]

    def choices(self, owner: str | None) -> list[tuple[str, str]]:
        return [(label(m, self.details(m)), m["ref"]) for m in self.folders.list(owner)]

    def refresh(self, request: gr.Request = None) -> Any:
        """The dropdown for the signed-in user (run when the page loads: the built page is the same for all)."""
        return gr.Dropdown(choices=self.choices(owner_of(request)))

    def sharing(self, ref: str | None, request: gr.Request = None) -> Any:
        """The share toggle for the picked one: changeable for one's own, read-only for another's."""
        owner = owner_of(request)
        try:
            meta = self.folders.get(ref, owner) if ref else None
        except ValueError:
            meta = None
        if meta is None:
            return gr.Checkbox(value=False, interactive=False, info=f"Pick one of your {self.folders.plural}.")
        if not meta["mine"]:
            return gr.Checkbox(value=True, interactive=False, info=f"Shared by {meta['owner']}: you can use it, "
                                                                   "only they can delete it or stop sharing it.")
        if owner is None:
            return gr.Checkbox(value=False, interactive=False, info="Sharing is for signed-in users; without "
                                                                    "accounts everything saved here is yours.")
        return gr.Checkbox(value=meta["shared"], interactive=True, info=SHARE_INFO)

    def share(self, ref: str | None, shared: bool, request: gr.Request = None) -> tuple[str, Any, Any]:
        """Share one's own with everyone, or make it private again: (message, dropdown, toggle). A refusal is a
        message, and the toggle goes back to the truth."""
        owner = owner_of(request)
        try:
            if not ref:
                raise ValueError(f"Pick one of your {self.folders.plural} to share.")
            meta = self.folders.set_shared(ref, bool(shared), owner)
        except ValueError as exc:
            return f"⚠️ {text(exc)}", gr.update(), self.sharing(ref, request)
        state = "shared with everyone (read-only for them)" if meta["shared"] else "private again"
        return (f"{self.folders.what.capitalize()} **{text(meta['name'])}** is {state}.",
                gr.Dropdown(choices=self.choices(owner), value=meta["ref"]), self.sharing(meta["ref"], request))

    def delete(self, ref: str | None, request: gr.Request = None) -> tuple[str, Any]:
        """Delete one's own: (message, dropdown). Another user's shared one is refused with whose it is, as a
        message (the pick stays)."""
        owner = owner_of(request)
        try:
            if not ref:
                raise ValueError(f"Pick a saved {self.folders.what} to delete.")
            self.folders.delete(ref, owner)
        except ValueError as exc:
            return f"⚠️ {text(exc)}", gr.update()
        return (f"Deleted {self.folders.what} **{text(ref)}**.",
                gr.Dropdown(choices=self.choices(owner), value=None))

    def wire(self, dropdown: gr.Dropdown, share_box: gr.Checkbox, delete_button: gr.Button, status: gr.Markdown,
             api: str, delete_api: str) -> None:
        """Fill `dropdown` per user on page load (endpoint `api`), keep `share_box` in step with the pick, and
        connect the toggle (endpoint `share_<api>`) and the delete button (`delete_api`)."""
        refresh_on_load(self.refresh, dropdown, api_name=api)
        dropdown.change(self.sharing, dropdown, share_box, api_visibility="private", show_progress="hidden")
        share_box.input(self.share, [dropdown, share_box], [status, dropdown, share_box], api_name=f"share_{api}")
        delete_button.click(self.delete, dropdown, [status, dropdown], api_name=delete_api)


def share_checkbox(elem_id: str) -> gr.Checkbox:
    """The share toggle, read-only until one of one's own is picked."""
    return gr.Checkbox(False, label="Share with everyone", interactive=False, info=SHARE_INFO, elem_id=elem_id)
