"""Who may download weights from the page: an online machine, and on a shared instance only when its operator
says so."""

from __future__ import annotations

import pytest

from webapp.model_choice import ui_downloads_allowed


@pytest.mark.parametrize(("offline", "accounts", "setting", "allowed"), [
    ("1", False, None, False),  # offline: never
    ("1", False, "on", False),
    ("0", False, None, True),  # one local user: on by default
    ("0", True, None, False),  # a shared instance: off by default
    ("0", True, "auto", False),
    ("0", True, "on", True),  # unless its operator turns it on
    ("0", False, "off", False),
    ("0", True, "nonsense", False),  # an unknown value means auto
])
def test_downloads_from_the_page(monkeypatch, offline, accounts, setting, allowed):
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    monkeypatch.delenv("FEWSHOT_AUTH", raising=False)
    monkeypatch.delenv("FEWSHOT_AUTH_FILE", raising=False)
    if accounts:
        monkeypatch.setenv("FEWSHOT_AUTH_FILE", "/srv/accounts.txt")
    if setting is None:
        monkeypatch.delenv("FEWSHOT_UI_DOWNLOADS", raising=False)
    else:
        monkeypatch.setenv("FEWSHOT_UI_DOWNLOADS", setting)
    assert ui_downloads_allowed() is allowed
