"""The answer to a user for a path in the upload folder, fetched by the file route or named as a run's input, says
nothing about other users' files: another user's file and no file at all get the same "not found"."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

from webapp import serving
from webapp.serving import GuardMiddleware


def answer(path: str, user: str, body: bytes = b"") -> tuple[int, bytes, bool]:
    """(status, body, whether Gradio was asked) of a GET of `path` (a POST of `body` if any) by the signed-in `user`,
    in front of a stand-in for Gradio that answers as it does for a file it does not serve."""
    sent: list[dict] = []
    reached: list[str] = []

    async def gradio(scope, receive, send) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 403, "headers": []})
        await send({"type": "http.response.body", "body": f"File not allowed: {scope['path']}".encode()})

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST" if body else "GET", "path": path, "query_string": b"",
             "headers": [(b"cookie", f"access-token-c=t-{user}".encode())],
             "app": SimpleNamespace(cookie_id="c", tokens={f"t-{user}": user})}
    asyncio.run(GuardMiddleware(gradio)(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), bool(reached)


def test_another_users_upload_and_a_missing_one_get_the_same_answer(tmp_path, monkeypatch):
    """Uploading a guessed picture gives its folder (the hash of its content); the folder's other names then told,
    404 against 403, whether another user had uploaded that picture under that name."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    picture = tmp_path / "payslip.png"
    picture.write_bytes(b"alice's picture")
    alices = Path(serving.hand_out(picture, "alice"))
    bobs = Path(serving.hand_out(picture, "bob", name="guess.png"))  # same bytes: same folder
    assert bobs.parent == alices.parent
    never_uploaded = [alices.with_name("other.png"), alices.parent.with_name("0" * 64) / "payslip.png",
                      alices.parent]
    for asked in (lambda path, user: answer(f"/gradio_api/file={path}", user),
                  lambda path, user: answer("/gradio_api/call/save_reference_set", user, json.dumps(
                      {"data": ["stolen", [{"path": str(path)}], "plate"]}).encode())):
        assert {asked(path, "bob") for path in (alices, *never_uploaded)} == {(404, b"Not found.", False)}
        assert asked(bobs, "bob")[2]  # his own goes on to Gradio
        assert asked(alices, "alice")[2]
