"""A shared instance tried as a hostile second user would: files reach only their owner, nothing a user
uploaded runs in the app's origin, user text is inert, password guessing is slowed down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from gradio_client import Client, handle_file

from tests.e2e.conftest import ARTIFACTS, running_app

ACCOUNTS = {"mallory": "mal-1-pw", "olivia": "oli-2-pw"}
XHTML = """<?xml version="1.0"?>
<html xmlns="http://www.w3.org/1999/xhtml"><body>
<script>localStorage.setItem("pwned", "1"); document.title = "pwned";</script>
<annotation><filename>a.png</filename></annotation>
</body></html>
"""


@pytest.fixture(scope="module")
def hosted_url() -> Iterator[str]:
    with running_app(ACCOUNTS) as url:
        yield url


@contextlib.contextmanager
def signed_in(url: str, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as session:
        assert session.post(url + "login", data={"username": user, "password": ACCOUNTS[user]}).status_code == 200
        yield session


FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/")  # Gradio's file route and its deprecated twin


def file_url(url: str, path: str, route: str = FILE_ROUTES[0]) -> str:
    return url.rstrip("/") + route + path


def call(session: httpx.Client, url: str, api_name: str, data: list) -> httpx.Response:
    """Start an API call the way any HTTP client can (its result is not awaited)."""
    return session.post(url.rstrip("/") + f"/gradio_api/call/{api_name}", json={"data": data})


def file_data(path: str) -> dict:
    return {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


@pytest.fixture(scope="module")
def olivia_job(hosted_url, metal_plate_images) -> tuple[str, str]:
    """Olivia's finished inspection: (job id, path of the heat map the page was given)."""
    from tasks import client

    olivia = Client(hosted_url, auth=("olivia", ACCOUNTS["olivia"]), verbose=False, download_files=False)
    status, gallery, *_ = olivia.predict([handle_file(str(metal_plate_images[0]))], None, "plate", "winclip-tiny",
                                         api_name="/anomaly")
    assert "Succeeded" in status
    job = client.list_jobs(1, owner="olivia")[0]
    return job.id, gallery[0]["image"]["path"]


def test_a_job_file_reaches_its_owner_only(hosted_url, olivia_job):
    from tasks import client

    job_id, served = olivia_job
    with signed_in(hosted_url, "olivia") as olivia, signed_in(hosted_url, "mallory") as mallory:
        mine = olivia.get(file_url(hosted_url, served))
        assert mine.status_code == 200 and mine.headers["content-type"] == "image/png"
        assert mine.headers["x-content-type-options"] == "nosniff"
        for route in FILE_ROUTES:
            assert mallory.get(file_url(hosted_url, served, route)).status_code == 404, route
        store_dir = client.artifact_path(job_id, "scores.json", owner="olivia").parent.parent
        for stored in ("job.json", "heartbeat", ".lock", "outputs/scores.json"):  # the store is never served
            assert olivia.get(file_url(hosted_url, str(store_dir / stored))).status_code in (403, 404), stored
            assert mallory.get(file_url(hosted_url, str(store_dir / stored))).status_code in (403, 404), stored
        inputs = sorted((store_dir / "inputs").rglob("*.png"))
        assert inputs and mallory.get(file_url(hosted_url, str(inputs[0]))).status_code in (403, 404)


def test_another_users_file_is_neither_served_nor_an_input(hosted_url, olivia_job, metal_plate_images):
    """A leaked link to Olivia's upload or job file: Mallory gets no file by any route, and no job of his
    may read it either (Gradio itself accepts any file in its upload folder as an input)."""
    from tasks import reference_sets
    from webapp import serving

    job_id, served = olivia_job
    with signed_in(hosted_url, "olivia") as olivia, signed_in(hosted_url, "mallory") as mallory:
        upload = olivia.post(hosted_url.rstrip("/") + "/gradio_api/upload",
                             files={"files": ("mine.png", metal_plate_images[4].read_bytes(), "image/png")}).json()[0]
        assert olivia.get(file_url(hosted_url, upload)).status_code == 200
        for route in FILE_ROUTES:
            assert mallory.get(file_url(hosted_url, upload, route)).status_code == 404, route
        for leaked in (upload, served):
            assert call(mallory, hosted_url, "save_reference_set", ["stolen", [file_data(leaked)], "plate"]
                        ).status_code == 404, leaked
        assert "stolen" not in [s["name"] for s in reference_sets.list_sets(owner="mallory")]
        started = call(olivia, hosted_url, "save_reference_set", ["mine", [file_data(upload)], "plate"])
        event = started.json()["event_id"]
        answer = olivia.get(hosted_url.rstrip("/") + f"/gradio_api/call/save_reference_set/{event}")
        assert "event: complete" in answer.text
        assert "mine" in [s["name"] for s in reference_sets.list_sets(owner="olivia")]
        record = serving.upload_folder() / serving.RECORDS / f"{job_id}.txt"
        assert record.is_file() and olivia.get(file_url(hosted_url, str(record))).status_code == 404
        assert mallory.get(hosted_url + "monitoring/summary").status_code == 403  # nobody's traffic either


def test_a_picture_gradio_saved_for_a_page_reaches_its_user_only(hosted_url, metal_plate_images):
    """A handler that returns a picture (the completion tab's drawing canvas: Olivia's upload, decoded) has Gradio
    save it in the upload folder; its link, seen by Mallory (a proxy log), used to give him the picture."""
    api = hosted_url.rstrip("/") + "/gradio_api"
    session = f"olivia-{os.urandom(8).hex()}"
    with signed_in(hosted_url, "olivia") as olivia, signed_in(hosted_url, "mallory") as mallory:
        upload = olivia.post(api + "/upload", files={"files": ("canvas.png", metal_plate_images[2].read_bytes(),
                                                                "image/png")}).json()[0]
        config = olivia.get(hosted_url + "config").json()
        names = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
        fn_index = {tuple(names[i] for i in dep["outputs"]): i for i, dep in enumerate(config["dependencies"])}

        def run(outputs: tuple[str, ...], data: list) -> list:
            joined = olivia.post(api + "/queue/join", json={"data": data, "fn_index": fn_index[outputs],
                                                           "session_hash": session, "trigger_id": None,
                                                           "event_data": None})
            assert joined.status_code == 200, joined.text
            with olivia.stream("GET", api + "/queue/data", params={"session_hash": session}) as stream:
                done = next(line for line in stream.iter_lines() if "process_completed" in line)
            return json.loads(done[len("data:"):])["output"]["data"]

        run(("completion-draw-on",), [[file_data(upload)], None])  # the canvas offers the upload's name
        canvas = run(("completion-editor",), ["canvas.png", [file_data(upload)], None, []])[0]
        picture = canvas["image"]["path"]
        assert Path(picture).parent.parent == Path(upload).parent.parent and picture != upload  # saved by Gradio
        assert olivia.get(file_url(hosted_url, picture)).status_code == 200
        assert mallory.get(file_url(hosted_url, picture)).status_code == 404


def test_nothing_reaches_the_server_by_url(hosted_url):
    """Gradio downloads a run's input given as a URL (any size: past the upload limits and quotas; the run was
    accepted), and its file route takes URLs too. Neither is offered: a run naming a URL is refused with what to
    do instead, the file route answers a URL with "Not found"."""
    api = hosted_url.rstrip("/") + "/gradio_api"
    url = "https://example.com/big.png"
    with signed_in(hosted_url, "mallory") as mallory:
        for route in FILE_ROUTES:
            for named in (url, url.replace("/", "%2F")):  # the server decodes escapes: the route reads a URL
                answer = mallory.get(file_url(hosted_url, named, route))
                assert (answer.status_code, answer.text) == (404, "Not found."), (route, named)
        by_url = {**file_data("big.png"), "path": url, "url": url}
        refused = call(mallory, hosted_url, "anomaly", [[by_url], None, "plate", "winclip-tiny"])
        assert refused.status_code == 422 and "upload the file itself" in refused.text
        refused = mallory.post(api + "/queue/join", json={"data": [[by_url]], "fn_index": 0, "trigger_id": None,
                                                          "session_hash": f"m-{os.urandom(8).hex()}"})
        assert refused.status_code == 422 and "given by URL" in refused.text


def test_a_file_named_with_percent_escapes_reaches_its_owner_only(hosted_url, metal_plate_images):
    """The server decodes a link's escapes once, so `%2541` names a file called `%41`: the guard judges that very
    file (decoding again, it judged a file named `A` nobody owns and let the link through)."""
    from urllib.parse import quote

    with signed_in(hosted_url, "olivia") as olivia, signed_in(hosted_url, "mallory") as mallory:
        upload = olivia.post(hosted_url.rstrip("/") + "/gradio_api/upload", files={
            "files": ("50%41off.png", metal_plate_images[3].read_bytes(), "image/png")}).json()[0]
        assert Path(upload).name == "50%41off.png"
        link = file_url(hosted_url, quote(upload))
        assert olivia.get(link).status_code == 200
        assert mallory.get(link).status_code == 404


def test_the_guard_reads_the_sign_in_cookie_as_gradio_does(hosted_url, metal_plate_images):
    """Gradio reads the sign-in cookie with Starlette's parser (quotes and escapes removed). The guard read it
    as it came, so a quoted cookie signed Mallory in while the guard saw nobody: his upload was owned by nobody
    (anyone's to read) and counted toward no quota."""
    api = hosted_url.rstrip("/") + "/gradio_api"
    with signed_in(hosted_url, "mallory") as mallory, signed_in(hosted_url, "olivia") as olivia:
        name, token = next((k, v) for k, v in mallory.cookies.items() if k.startswith("access-token"))
        with httpx.Client(timeout=30) as raw:
            upload = raw.post(api + "/upload", headers={"cookie": f'{name}="{token}"'}, files={
                "files": ("mine.png", metal_plate_images[1].read_bytes(), "image/png")})
        assert upload.status_code == 200, upload.text
        assert olivia.get(file_url(hosted_url, upload.json()[0])).status_code == 404


def test_what_one_user_uploads_is_bounded(hosted_url, monkeypatch):
    """Uploads no job reads stay in the upload folder for FEWSHOT_UPLOAD_CACHE_HOURS: each user has a quota."""
    monkeypatch.setenv("FEWSHOT_MAX_USER_UPLOAD_MB", "5")
    three_mb = os.urandom(3 * 2**20)

    def upload(session: httpx.Client) -> httpx.Response:
        return session.post(hosted_url.rstrip("/") + "/gradio_api/upload",
                            files={"files": ("part.png", three_mb, "image/png")})

    with signed_in(hosted_url, "mallory") as mallory, signed_in(hosted_url, "olivia") as olivia:
        assert upload(mallory).status_code == 200
        refused = upload(mallory)
        assert refused.status_code == 413
        assert refused.text.startswith("Upload refused: you uploaded 3 MB in the last 24 h and this adds 3 MB; "
                                       "at most 5 MB per user are accepted (FEWSHOT_MAX_USER_UPLOAD_MB).")
        assert upload(olivia).status_code == 200  # one user's quota is not another's


def test_a_restart_keeps_uploads_private_and_counted(hosted_url, monkeypatch, metal_plate_images):
    """Who uploaded what is in a ledger beside the copies' records: a restarted app (its memory empty) still
    serves an upload to its uploader alone, and still counts it against the uploader's quota."""
    from webapp import serving

    with signed_in(hosted_url, "olivia") as olivia, signed_in(hosted_url, "mallory") as mallory:
        upload = olivia.post(hosted_url.rstrip("/") + "/gradio_api/upload",
                             files={"files": ("before.png", metal_plate_images[5].read_bytes(), "image/png")}).json()[0]
        monkeypatch.setattr(serving, "_owners", {})  # the app restarted: nothing in memory
        assert mallory.get(file_url(hosted_url, upload)).status_code == 200  # what the ledger is there for
        ledger = serving.restore_owners()  # what a start does
        assert mallory.get(file_url(hosted_url, upload)).status_code == 404
        assert call(mallory, hosted_url, "save_reference_set", ["stolen", [file_data(upload)], "plate"]
                    ).status_code == 404
        assert olivia.get(file_url(hosted_url, upload)).status_code == 200
    monkeypatch.setenv("FEWSHOT_MAX_USER_UPLOAD_MB", "1")
    size = metal_plate_images[5].stat().st_size
    assert serving.UploadQuota(ledger).refusal("olivia", 2**20 - size + 1, time.time())  # a new app counts her upload


def test_a_page_session_answers_its_own_user_only(hosted_url, metal_plate_images):
    """Gradio names a page's session by a random hash in its requests: Mallory, who learned Olivia's (a proxy log),
    can neither read its event stream, nor cancel its run, nor snapshot it as a deep link; Gradio's run history
    (runs kept in the browser, copied to a Hugging Face bucket on request) is off: the Jobs tab is the history."""
    session = f"olivia-{os.urandom(8).hex()}"
    api = hosted_url.rstrip("/") + "/gradio_api"
    with signed_in(hosted_url, "olivia") as olivia, signed_in(hosted_url, "mallory") as mallory:
        upload = olivia.post(api + "/upload", files={"files": ("p.png", metal_plate_images[6].read_bytes(),
                                                                "image/png")}).json()[0]
        info = olivia.get(api + "/info").json()["named_endpoints"]["/anomaly"]
        defaults = [p.get("parameter_default") for p in info["parameters"]]
        data = [[file_data(upload)], None, "plate", "winclip-tiny", *defaults[4:]]
        fn_index = next(i for i, dep in enumerate(olivia.get(hosted_url + "config").json()["dependencies"])
                        if dep.get("api_name") == "anomaly")
        joined = olivia.post(api + "/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                       "trigger_id": None, "event_data": None})
        assert joined.status_code == 200, joined.text
        event = joined.json()["event_id"]
        assert mallory.get(api + "/queue/data", params={"session_hash": session}).status_code == 404
        assert mallory.get(api + f"/heartbeat/{session}").status_code == 404
        assert mallory.post(api + "/cancel", json={"session_hash": session, "fn_index": fn_index,
                                                   "event_id": event}).status_code == 404
        assert mallory.post(api + "/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                       "trigger_id": None, "event_data": None}).status_code == 404
        for user in (olivia, mallory):
            assert user.get(api + "/deep_link", params={"session_hash": session}).status_code == 404
            assert user.get(api + "/runs").status_code == 404
        with olivia.stream("GET", api + "/queue/data", params={"session_hash": session}, timeout=300) as stream:
            assert stream.status_code == 200
            lines = []
            for line in stream.iter_lines():
                lines.append(line)
                if "process_completed" in line:
                    break
        assert "Succeeded" in lines[-1]  # her own page still gets its result


def test_a_run_answers_its_own_user_only(hosted_url):
    """Gradio's route for a call's results (`GET /gradio_api/call/<api>/<event id>`) also reads a page session's
    stream when handed a session hash, and its cancel names a run by its event id; of a repeated parameter Gradio
    reads the last: Mallory, who learned Olivia's session hash or event id (a proxy log), gets none of her results
    and can end none of her runs."""
    api = hosted_url.rstrip("/") + "/gradio_api"
    session = f"olivia-{os.urandom(8).hex()}"
    with signed_in(hosted_url, "olivia") as olivia, signed_in(hosted_url, "mallory") as mallory:
        fn_index = next(i for i, dep in enumerate(olivia.get(hosted_url + "config").json()["dependencies"])
                        if dep.get("api_name") == "list_jobs")
        joined = olivia.post(api + "/queue/join", json={"data": [], "fn_index": fn_index, "session_hash": session,
                                                       "trigger_id": None, "event_data": None})
        page_event = joined.json()["event_id"]
        called = call(olivia, hosted_url, "list_jobs", []).json()["event_id"]
        for name in (session, page_event, called):
            assert mallory.get(api + f"/call/list_jobs/{name}").status_code == 404
            assert mallory.get(api + f"/call/v2/list_jobs/{name}").status_code == 404
        own = f"mallory-{os.urandom(8).hex()}"
        assert mallory.get(api + f"/queue/data?session_hash={own}&session_hash={session}").status_code == 404
        assert mallory.post(api + "/cancel", json={"session_hash": own, "fn_index": fn_index,
                                                   "event_id": called}).status_code == 404
        for name in (session, called):  # her own results still reach her
            answer = olivia.get(api + f"/call/list_jobs/{name}")
            assert answer.status_code == 200 and "event: complete" in answer.text


def test_each_route_naming_a_run_or_an_upload_by_its_id_answers_its_own_user_only():
    """The guard in front of a stand-in for Gradio: a new run is its user's, and every route that names a run
    (its results, its cancel, a streaming input's data and its end) refuses anyone else, before Gradio sees it; an
    upload's progress (it names the files) and its id alike."""
    from webapp.serving import GuardMiddleware

    reached = []

    async def gradio(scope, receive, send) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps({"event_id": "olivia-run"}).encode()})

    guard = GuardMiddleware(gradio)
    signed_in_app = SimpleNamespace(cookie_id="c", tokens={"t-olivia": "olivia", "t-mallory": "mallory"})

    async def app(scope, receive, send) -> None:
        scope["app"] = signed_in_app
        await guard(scope, receive, send)

    async def requests() -> dict[str, list[int]]:
        answers: dict[str, list[int]] = {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app") as http:
            joined = await http.post("/gradio_api/queue/join", json={"data": [], "session_hash": "olivia-page"},
                                     cookies={"access-token-c": "t-olivia"})
            assert joined.json() == {"event_id": "olivia-run"}
            await http.post("/gradio_api/upload?upload_id=olivia-up", content=b"x",
                            cookies={"access-token-c": "t-olivia"})
            for user in ("mallory", "olivia"):
                cookies, own = {"access-token-c": f"t-{user}"}, {"data": [], "session_hash": f"{user}-page"}
                answers[user] = [(await request).status_code for request in (
                    http.get("/gradio_api/call/list_jobs/olivia-run", cookies=cookies),
                    http.get("/gradio_api/call/list_jobs/olivia-page", cookies=cookies),
                    http.post("/gradio_api/cancel", json={**own, "fn_index": 0, "event_id": "olivia-run"},
                              cookies=cookies),
                    http.post("/gradio_api/stream/olivia-run", json=own, cookies=cookies),
                    http.post("/gradio_api/stream/olivia-run/close", cookies=cookies),
                    http.get("/gradio_api/upload_progress?upload_id=olivia-up", cookies=cookies),
                    http.post("/gradio_api/upload?upload_id=olivia-up", content=b"x", cookies=cookies))]
        return answers

    with ThreadPoolExecutor(1) as thread:  # its own event loop: the browser's Playwright holds this thread's
        answers = thread.submit(asyncio.run, requests()).result()
    assert answers == {"mallory": [404] * 7, "olivia": [200] * 7}
    assert len(reached) == 9  # Mallory's requests never reached Gradio


def test_an_unknown_job_names_no_server_path(hosted_url, olivia_job, sandbox):
    from webapp.views import text

    mallory = Client(hosted_url, auth=("mallory", ACCOUNTS["mallory"]), verbose=False)
    for job_id in (olivia_job[0], "0" * 32, "../../etc"):
        details, gallery, _, files = mallory.predict(job_id, api_name="/open_job")
        assert details.startswith("No job") and not gallery and not files
        assert str(sandbox) not in details and "/" not in details.replace(text(job_id), "")


def test_a_purged_job_is_served_by_no_route(hosted_url, metal_plate_images):
    from tasks import client
    from tasks.store import get_store
    from webapp import serving

    olivia = Client(hosted_url, auth=("olivia", ACCOUNTS["olivia"]), verbose=False, download_files=False)
    _, gallery, *_ = olivia.predict([handle_file(str(metal_plate_images[1]))], None, "old plate", "winclip-tiny",
                                    api_name="/anomaly")
    job = client.list_jobs(1, owner="olivia")[0]
    served = gallery[0]["image"]["path"]
    with signed_in(hosted_url, "olivia") as session:
        assert session.get(file_url(hosted_url, served)).status_code == 200
        removed = [i for i in get_store().purge(0, now=time.time() + 60) if i == job.id]
        assert removed == [job.id] and serving.forget_jobs(removed) >= 1
        assert session.get(file_url(hosted_url, served)).status_code in (403, 404)


def test_a_job_is_deleted_by_its_owner_only_and_then_served_by_no_route(hosted_url, metal_plate_images):
    from tasks import client

    olivia = Client(hosted_url, auth=("olivia", ACCOUNTS["olivia"]), verbose=False, download_files=False)
    mallory = Client(hosted_url, auth=("mallory", ACCOUNTS["mallory"]), verbose=False, download_files=False)
    _, gallery, *_ = olivia.predict([handle_file(str(metal_plate_images[2]))], None, "spare plate", "winclip-tiny",
                                    api_name="/anomaly")
    job = client.list_jobs(1, owner="olivia")[0]
    served = gallery[0]["image"]["path"]
    for ref in (job.id, job.id[:8]):
        details, *_ = mallory.predict(ref, api_name="/delete_job")
        assert details.startswith("⚠️ No job") and str(Path(served).parent) not in details
    with signed_in(hosted_url, "olivia") as session:
        assert session.get(file_url(hosted_url, served)).status_code == 200
        details, *_ = olivia.predict(job.id[:8], api_name="/delete_job")
        assert details.startswith(f"Deleted job `{job.id[:8]}` and its files (") and "freed" in details
        for route in FILE_ROUTES:
            assert session.get(file_url(hosted_url, served, route)).status_code in (403, 404)  # gone: Gradio's 403
    assert job.id not in [j.id for j in client.list_jobs(50, owner="olivia")]


def test_uploaded_markup_is_an_attachment_and_never_runs(hosted_url, browser, tmp_path, metal_plate_images):
    """The stored-XSS path of the finding: an XHTML document uploaded as an annotation. Another user's link to
    it answers 404; opened by its uploader, it is a download that runs nothing."""
    evil = tmp_path / "evil.xml"
    evil.write_text(XHTML)
    with signed_in(hosted_url, "mallory") as session:
        response = session.post(hosted_url.rstrip("/") + "/gradio_api/upload",
                                files={"files": ("evil.xml", XHTML.encode(), "application/xml")})
        link = file_url(hosted_url, response.json()[0])
        served = session.get(link)
        assert served.headers["content-disposition"].startswith("attachment")
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in served.headers["content-security-policy"]
    from tasks import client
    from tasks.store import get_store

    job = client.submit("completion", {"preset": "completion-tiny"},
                        {"images": [metal_plate_images[0]], "annotations": [("evil.xml", evil)]}, owner="mallory")
    kept = next((get_store().job_dir(job.id) / "inputs").rglob("*evil.xml"))  # the job keeps the upload
    with signed_in(hosted_url, "olivia") as olivia:
        assert olivia.get(file_url(hosted_url, str(kept))).status_code in (403, 404)
        assert olivia.get(link).status_code == 404
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(hosted_url)
        page.get_by_label("username").fill("mallory")
        page.get_by_label("password").fill(ACCOUNTS["mallory"])
        page.get_by_role("button", name="Login").click()
        page.get_by_text("Anomaly inspection (WinCLIP, WinCLIP+, MuSc, AnomalyDINO)").wait_for()
        with page.expect_download() as download:
            page.evaluate("link => { const a = document.createElement('a'); a.href = link; "
                          "document.body.appendChild(a); a.click(); }", link)
        assert download.value.suggested_filename
        page.goto(hosted_url)
        page.get_by_text("Anomaly inspection (WinCLIP, WinCLIP+, MuSc, AnomalyDINO)").wait_for()
        assert page.evaluate("localStorage.getItem('pwned')") is None and page.title() != "pwned"
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "hosting-xss-failure.png"), full_page=True)
        raise
    finally:
        context.close()


def test_user_text_is_shown_as_typed_not_rendered(hosted_url, browser, metal_plate_images):
    name = "<img src=x onerror=document.title='pwned'> [l](javascript:1)"  # 60 characters: the most accepted
    olivia = Client(hosted_url, auth=("olivia", ACCOUNTS["olivia"]), verbose=False, download_files=False)
    olivia.predict([handle_file(str(metal_plate_images[2]))], None, name, "winclip-tiny", api_name="/anomaly")
    job_id = olivia.predict(api_name="/list_jobs")["data"][0][0]
    details, *_ = olivia.predict(job_id, api_name="/open_job")
    assert "<img" not in details and "&lt;img" in details
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(hosted_url)
        page.get_by_label("username").fill("olivia")
        page.get_by_label("password").fill(ACCOUNTS["olivia"])
        page.get_by_role("button", name="Login").click()
        page.get_by_role("tab", name="Jobs").click()
        page.locator("#jobs-id textarea, #jobs-id input").first.fill(job_id)
        page.locator("#jobs-open").click()
        page.locator("#jobs-details").get_by_text("onerror", exact=False).wait_for()
        assert page.locator("#jobs-details img").count() == 0
        assert page.locator("#jobs-details a").count() == 0 and page.title() != "pwned"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "hosting-escaped-details.png"), full_page=False)
    finally:
        context.close()


def test_password_guessing_is_slowed_and_the_right_password_still_works(hosted_url):
    with httpx.Client(timeout=60) as session:
        took = []
        for _ in range(8):
            start = time.monotonic()
            answer = session.post(hosted_url + "login", data={"username": "olivia", "password": "guess"})
            assert answer.status_code >= 400
            took.append(time.monotonic() - start)
        assert max(took[:5]) < 0.5 and took[5] >= 0.4 and took[7] > took[6] > took[5], took
        start = time.monotonic()
        assert session.post(hosted_url + "login", data={"username": "olivia",
                                                        "password": ACCOUNTS["olivia"]}).status_code == 200
        assert time.monotonic() - start < 10
        assert session.post(hosted_url + "login", data={"username": "olivia",
                                                        "password": ACCOUNTS["olivia"]}).status_code == 200


def test_a_decoy_user_name_or_another_form_encoding_does_not_escape_the_throttle(hosted_url):
    """The guard counted failures against the form's first `username` while Gradio checks the last: a decoy name
    first put 30 guesses for Mallory's name on throwaway names, with no wait. A multipart form counted as user ''."""
    with httpx.Client(timeout=60) as session:
        decoy = session.post(hosted_url + "login", content="username=decoy&username=mallory&password=guess",
                             headers={"content-type": "application/x-www-form-urlencoded"})
        assert decoy.status_code == 400 and "one username" in decoy.text
        too_big = session.post(hosted_url + "login", data={"username": "mallory", "password": "x" * 20_000})
        assert too_big.status_code == 400
        took = []
        for _ in range(7):  # multipart: counted against Mallory's name as the urlencoded form is
            start = time.monotonic()
            answer = session.post(hosted_url + "login", files={"username": (None, "mallory"),
                                                                "password": (None, "guess")})
            assert answer.status_code >= 400
            took.append(time.monotonic() - start)
        assert max(took[:5]) < 0.5 and took[5] >= 0.4 and took[6] > took[5], took
        right = session.post(hosted_url + "login", files={"username": (None, "mallory"),
                                                           "password": (None, ACCOUNTS["mallory"])})
        assert right.status_code == 200


def test_a_run_request_over_16_mb_is_refused_before_it_is_read_whole(hosted_url):
    body = b'{"data": ["' + b"x" * (17 * 2**20) + b'"], "fn_index": 0, "session_hash": "s"}'
    with signed_in(hosted_url, "mallory") as session:
        answer = session.post(hosted_url + "gradio_api/queue/join", content=body,
                              headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "upload them first" in answer.text


def test_pictures_sent_for_edits_are_bounded_per_user_and_in_size(hosted_url):
    """Gradio's image editor kept each edit's pictures, sent under any new id, in the web process for good: a
    signed-in client took it from 277 to 356 MB with 8 x 10 MB, and a layer index of 10**9 would make a list that
    long. The app's other camera route is off."""
    from webapp.pending_edits import PENDING, PER_EDITOR

    with signed_in(hosted_url, "mallory") as session:
        config = session.get(hosted_url + "config").json()
        editors = [c["id"] for c in config["components"] if c["type"] == "imageeditor"]
        route = hosted_url + "gradio_api/component_server"

        def send(edit: str, index: str = "null", size: int = 1000) -> httpx.Response:
            form = {"component_id": str(editors[0]), "session_hash": "mallory-page", "fn_name": "accept_blobs",
                    "id": edit, "type": "layer" if index != "null" else "background", "index": index}
            return session.post(route, data=form, files={"file": ("background.png", b"x" * size, "image/png")})

        for index in range(20):
            assert send(f"edit-{index}").status_code == 200
        held = {edit for (user, _, edit), editor in PENDING._edits.items() if user == "user:mallory"}
        assert held == {f"edit-{index}" for index in range(20 - PER_EDITOR, 20)}
        stored = next(editor for (user, _, _), editor in PENDING._edits.items() if user == "user:mallory")
        assert not {f"edit-{index}" for index in range(20 - PER_EDITOR)} & set(stored.blob_storage)
        assert send("edit-layer", index=str(10**9)).status_code >= 400
        assert "edit-layer" not in stored.blob_storage
        port = int(hosted_url.rsplit(":", 1)[1].strip("/"))
        for length, status in (("Transfer-Encoding: chunked", b"411"), (f"Content-Length: {300 * 2**20}", b"413")):
            with socket.create_connection(("127.0.0.1", port)) as sock:  # answered before the body is read
                sock.sendall(f"POST /gradio_api/component_server HTTP/1.1\r\nHost: x\r\n{length}\r\n"
                             "Content-Type: multipart/form-data\r\n\r\n".encode())
                sock.settimeout(10)
                answer = b""
                while b"MB (" not in answer and (chunk := sock.recv(1000)):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 " + status) and b"FEWSHOT_MAX_UPLOAD_MB" in answer
        assert session.post(hosted_url + "gradio_api/process_recording", files={"file": b"x"}).status_code == 404


def test_no_route_reads_a_body_past_16_mb_and_the_vibe_editor_is_off(hosted_url):
    """Gradio's /reset answers without sign-in and read any body whole first: 400 MB took the web process from 540
    MB to 1.7 GB (and 1.3 GB after). Its "vibe" editor routes (no sign-in) did the same."""
    with httpx.Client(timeout=60) as anonymous:
        declared = anonymous.post(hosted_url + "gradio_api/reset", content=b"x" * (17 * 2**20))
        assert declared.status_code == 413

        assert anonymous.post(hosted_url + "gradio_api/reset", json={"event_id": "x"}).status_code == 200
        assert anonymous.post(hosted_url + "gradio_api/vibe-edit", json={"prompt": "x"}).status_code == 404


def test_a_flood_of_wrong_passwords_for_a_name_holds_off_its_right_password_at_most_30_s():
    """Attempts sent together queue up per address, not per user name: a flood of wrong passwords for Olivia's name
    (sent together, from one address) used to push her own sign-in, from her address, hours back."""
    from webapp.serving import SignInThrottle

    throttle = SignInThrottle()
    flood = ["user:olivia", "address:10.0.0.66"]
    for _ in range(5):
        throttle.record(flood, succeeded=False, now=0.0)
    waits = [throttle.wait_s(flood, now=1.0) for _ in range(1000)]
    assert waits[-1] > 400  # the flood itself queues up, one attempt after another
    assert throttle.wait_s(["user:olivia", "address:10.0.0.7"], now=2.0) <= throttle.max_delay_s


def test_uploads_and_copies_age_out(hosted_url):
    from webapp import serving

    old = serving.scratch_dir("old-") / "left-behind.zip"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    assert serving.sweep() >= 1 and not old.exists() and not old.parent.exists()
    assert Path(serving.upload_folder()).is_dir()


def test_a_copy_of_an_old_file_is_a_link_that_lives_from_when_it_was_handed_out(hosted_url, tmp_path):
    """A restored input or an old job's result is handed out as a second name of the stored bytes (no copy of a
    2 GB zip), and the sweep dates it from when it was handed out, not from the stored file's age."""
    from webapp import serving

    stored = tmp_path / "dataset.zip"
    stored.write_bytes(os.urandom(4096))
    os.utime(stored, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    served = Path(serving.hand_out(stored, "olivia"))
    assert served.stat().st_ino == stored.stat().st_ino  # same bytes on disk
    serving.sweep()
    assert served.is_file() and serving.may_read(str(served), "olivia")


def test_a_purged_jobs_copies_go_but_the_same_copy_handed_to_another_users_job_stays(hosted_url, tmp_path):
    """Copies are named by their bytes: two users' jobs with the same output share one. Purging one user's job took
    the other's away (their link broke); and a name with a space was never deleted with its job."""
    from webapp import serving

    (tmp_path / "olivia.png").write_bytes(b"same bytes, same name")
    (tmp_path / "mallory.png").write_bytes(b"same bytes, same name")
    for name, olivias_job, mallorys_job in (("scores.csv", "a" * 32, "b" * 32),
                                            ("scores table.csv", "c" * 32, "d" * 32)):
        served = serving.hand_out(tmp_path / "olivia.png", "olivia", name, olivias_job)
        assert serving.hand_out(tmp_path / "mallory.png", "mallory", name, mallorys_job) == served
        assert serving.forget_jobs([olivias_job]) == 0
        assert Path(served).is_file() and serving.may_read(served, "mallory")
        assert serving.forget_jobs([mallorys_job]) == 1
        assert not Path(served).exists()


def test_copies_of_a_job_purged_by_the_command_line_are_deleted_at_the_next_sweep(hosted_url, metal_plate_images):
    from tasks import client
    from tasks.__main__ import main as tasks_cli
    from webapp import serving

    olivia = Client(hosted_url, auth=("olivia", ACCOUNTS["olivia"]), verbose=False, download_files=False)
    _, gallery, *_ = olivia.predict([handle_file(str(metal_plate_images[3]))], None, "plate", "winclip-tiny",
                                    api_name="/anomaly")
    served = gallery[0]["image"]["path"]
    job = client.list_jobs(1, owner="olivia")[0]
    assert Path(served).is_file() and tasks_cli(["purge", "--days", "0.0000001"]) == 0
    with pytest.raises(client.JobNotFound):
        client.get(job.id)
    serving.sweep()
    assert not Path(served).exists()


def test_the_session_table_is_bounded_per_user_so_a_flood_pushes_out_only_the_flooders_own():
    from webapp.serving import SessionOwners

    sessions = SessionOwners(most_per_user=3)
    assert sessions.claim("a", "olivia") and sessions.claim("b", "mallory")
    assert not sessions.claim("a", "mallory") and not sessions.allows("a", "mallory")
    assert sessions.allows("never-ran", "mallory")
    for flood in range(1000):
        assert sessions.claim(f"flood-{flood}", "mallory")
    assert not sessions.allows("a", "mallory") and not sessions.claim("a", "mallory")  # still olivia's
    assert sessions.allows("b", "olivia") and sessions.allows("flood-996", "olivia")  # mallory's oldest went
    assert not sessions.allows("flood-999", "olivia")
    for session in ("c", "d", "a", "e"):  # "a" used again before "e" comes: olivia's least recently used is "c"
        assert sessions.claim(session, "olivia")
    assert sessions.allows("c", "mallory") and not sessions.allows("a", "mallory")
    assert len(sessions._owners) == 6
