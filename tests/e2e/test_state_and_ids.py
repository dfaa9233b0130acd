"""State that survives a reload, ids people can use, and queue feedback, in Debian's chromium: saved sets and models
in the dropdowns after a reload and after a change elsewhere; a job's id in the address re-attaches a reload (or a
colleague's link) with live progress; Jobs → Open follows a job live by its short id; jobs are named; a queued
job says what runs before it."""

from __future__ import annotations

import re
import types
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tasks import client, finetune_models
from tasks import store as store_module
from tasks.client import Status
from tasks.store import finish_job, get_store
from tests.e2e.conftest import ACCOUNTS, ARTIFACTS
from tests.e2e.test_finetune_browser import fill_number, start_classifier_training
from tests.helpers import colour_classes, fake_model, moving_square_video, shape_detection_set, wait_until, zip_tree

pytestmark = pytest.mark.browser
JOB_S = 120_000  # ms: jobs on a slow, shared CPU


def shot(ui, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    ui.screenshot(path=str(ARTIFACTS / f"state-{name}.png"), full_page=full_page)


def option(ui, dropdown_id: str, text: str):
    """Open a dropdown and return its options containing `text` (filled once the page's load events ran)."""
    ui.locator(f"#{dropdown_id} input").click()
    return ui.get_by_role("option").filter(has_text=text)


def long_training(tmp_path: Path, name: str | None = None) -> client.Job:
    """A classifier training of the tiny preset that runs until cancelled, submitted as the local user."""
    archive = tmp_path / f"colours-{uuid.uuid4().hex[:6]}.zip"
    zip_tree(colour_classes(tmp_path / archive.stem), archive, "colours")
    params = {"model_name": f"long {uuid.uuid4().hex[:6]}", "preset": "finetune-clip-tiny", "steps": 100_000}
    return client.submit("finetune_classify", params, {"dataset": [archive]}, name=name)


def wait_running(job: client.Job) -> None:
    wait_until(lambda: client.get(job.id).status is Status.RUNNING, 120, f"job {job.id[:8]} to run", poll=0.2)


def cancel_and_wait(*jobs: client.Job) -> None:
    for job in jobs:
        if not client.get(job.id).status.final:
            client.cancel(job.id)
    for job in jobs:
        wait_until(lambda job=job: client.get(job.id).status.final, 120, f"job {job.id[:8]} to end", poll=0.2)


def test_a_saved_set_stays_after_a_reload_and_in_a_new_window(page, metal_plate_images):
    name = f"line {uuid.uuid4().hex[:4]}"
    goods = metal_plate_images[:2]
    page.locator("#anomaly-references input[type=file]").set_input_files([str(p) for p in goods])
    expect(page.locator("#anomaly-references")).to_contain_text(goods[1].stem)  # uploaded
    page.locator("#anomaly-set-name textarea, #anomaly-set-name input").first.fill(name)
    page.locator("#anomaly-save-set").click()
    expect(page.locator("#anomaly-set-status")).to_contain_text(f"Saved reference set {name}")
    page.locator("#anomaly-save-set").click()  # again: the name is taken
    expect(page.get_by_text(f"A reference set named '{name}' already exists")).to_be_visible()
    expect(page.locator("#anomaly-reference-set")).not_to_contain_text("Error")  # the list is not covered by it
    expect(page.locator("#anomaly-reference-set input")).to_be_visible()
    expect(page.locator("#anomaly-set-status")).to_contain_text("Not saved")  # not the last save's "Saved …"

    page.reload()
    option(page, "anomaly-reference-set", name).wait_for()
    shot(page, "set-after-reload", full_page=False)
    other = page.context.new_page()  # another window of the same user
    other.goto(page.url)
    option(other, "anomaly-reference-set", name).wait_for()
    other.close()


def test_a_model_saved_or_deleted_elsewhere_shows_when_switching_tabs(page, tmp_path):
    page.get_by_text("Anomaly inspection (WinCLIP").first.wait_for()  # loaded before the model exists
    name = f"screws {uuid.uuid4().hex[:4]}"
    detector = fake_model(tmp_path / "model", task="detect", input={"size": 64})
    finetune_models.save(name, detector)  # e.g. a training that just ended, or an upload in another window
    page.get_by_role("tab", name="Annotation completion").click()
    option(page, "completion-preset", f"Fine-tuned detector · {name}").wait_for()
    shot(page, "model-after-tab-switch", full_page=False)
    page.keyboard.press("Escape")

    finetune_models.delete(name)  # e.g. deleted in another window
    page.get_by_role("tab", name="Jobs").click()
    page.get_by_role("tab", name="Annotation completion").click()
    page.locator("#completion-preset input").click()
    page.get_by_role("option").first.wait_for()
    expect(page.get_by_role("option").filter(has_text=name)).to_have_count(0)


def test_a_queued_training_says_what_runs_ahead_and_a_reload_follows_it_live(page, tmp_path):
    blocker = long_training(tmp_path)
    started = None
    try:
        wait_running(blocker)
        name = f"reload-{uuid.uuid4().hex[:4]}"  # not "reload 1804": a name ending in a number counts on from it
        start_classifier_training(page, tmp_path, name, steps=100_000, settings=lambda ui: ui.locator(
            "#finetune-method").get_by_text("Linear probe (head only)").click())
        status = page.locator("#finetune-status")
        expect(status).to_contain_text("next in line · behind 1 classifier training", timeout=JOB_S)
        expect(status).to_contain_text("Queued")
        page.wait_for_url(re.compile(r"[?&]job=[0-9a-f]{32}"))  # the tab put its job in the address
        started = client.get(page.url.split("job=")[1][:32])
        assert started.tool == "finetune_classify" and started.status is Status.QUEUED
        status.evaluate("element => element.scrollIntoView({block: 'center'})")  # it keeps changing
        shot(page, "queued-in-tab", full_page=False)

        client.cancel(blocker.id)
        expect(status).to_contain_text("Running", timeout=JOB_S)
        page.reload()
        expect(status).to_contain_text(f"Running · job {started.id[:8]}", timeout=JOB_S)  # in its own sub-tab
        expect(page.locator("#finetune-classifier-tab")).to_be_visible()
        first_line = status.inner_text().splitlines()[0]
        expect(status).not_to_contain_text(first_line, timeout=JOB_S)  # progress moves on without a click
        expect(page.locator("#finetune-curves")).to_be_visible()
        shot(page, "reload-follows-training", full_page=False)

        # the form it was submitted with, its model name a free one (the running job saves under its own)
        expect(page.locator("#finetune-zip")).to_contain_text(re.compile(r"colours\s*\.zip"))
        expect(page.locator("#finetune-name textarea, #finetune-name input").first).to_have_value(f"{name} 2")
        expect(page.locator("#finetune-preset input")).to_have_value(re.compile("tiny"))
        page.get_by_text("Training settings").first.click()
        expect(page.locator("#finetune-steps input")).to_have_value("100000")
        expect(page.locator("#finetune-method input[value=linear]")).to_be_checked()
        shot(page, "reload-keeps-training-form")

        page.locator("#finetune-cancel").click()  # the tab's Cancel stops the job it re-attached to
        expect(status).to_contain_text("Succeeded", timeout=JOB_S)  # followed to the end: cancel keeps the best
        assert client.get(started.id).result["stopped"] == "cancelled"
        fill_number(page.locator("#finetune-steps input"), "3")  # one change trains it again, on the restored zip
        page.locator("#finetune-train").click()
        expect(status).not_to_contain_text(f"job {started.id[:8]}", timeout=JOB_S)
        expect(status).to_contain_text(f"Model {name} 2 saved", timeout=JOB_S)
    finally:
        cancel_and_wait(blocker, *([started] if started else []))


def test_a_reload_restores_classes_one_by_one_or_says_what_the_form_cannot_hold(page, tmp_path, app_url):
    folders = sorted(colour_classes(tmp_path / "set").iterdir())
    images = {folder.name: sorted(map(str, folder.iterdir()))[:2] for folder in folders}

    def linked(names: list[str], **params) -> None:
        """Open the page with an API job of these classes one by one (ended: no training needed; one that ends
        before its cancel lands saves its model, so each job names its own)."""
        job = client.submit("finetune_classify", {"class_names": names, "preset": "finetune-clip-tiny", "steps": 1,
                                                  "model_name": f"rows {len(names)}", **params},
                            {f"class_{i:03d}": images[name] for i, name in enumerate(names)})
        cancel_and_wait(job)
        page.goto(f"{app_url}?job={job.id}")

    page.wait_for_load_state()
    linked(["blue", "green"])
    expect(page.locator("#finetune-class-1 textarea, #finetune-class-1 input").first).to_have_value("green",
                                                                                              timeout=JOB_S)
    expect(page.locator("#finetune-class-1-files")).to_contain_text(re.compile(r"green_1\s*\.png"))  # rows opened
    expect(page.locator("#finetune-class-2 textarea, #finetune-class-2 input").first).to_have_value("")
    shot(page, "reload-keeps-classes")

    linked(["blue", "green", "red", "blue"], batch_size=4)  # 4 classes: the form has 3 rows; no batch size
    expect(page.get_by_text("Not restored: the files (4 classes were given one by one")).to_be_visible(timeout=JOB_S)
    expect(page.get_by_text("Batch size: 4")).to_be_visible()
    shot(page, "reload-says-what-it-cannot-restore", full_page=False)
    page.get_by_text("…or classes one by one").click()  # left folded, and empty: not 3 of the 4 classes
    expect(page.locator("#finetune-class-0 textarea, #finetune-class-0 input").first).to_have_value("")


def test_jobs_open_follows_a_job_by_its_short_id_and_names_it(page, tmp_path):
    blocker = long_training(tmp_path)
    queued = long_training(tmp_path, name="night shift")
    try:
        wait_running(blocker)
        page.get_by_role("tab", name="Jobs").click()
        page.locator("#jobs-id textarea, #jobs-id input").first.fill(queued.id[:6])
        page.locator("#jobs-open").click()
        details = page.locator("#jobs-details")
        expect(details).to_contain_text(f"Queued · job {queued.id[:8]} · night shift · next in line · "
                                        "behind 1 classifier training")
        expect(page.locator("#jobs-table")).to_contain_text("night shift", timeout=JOB_S)
        shot(page, "open-queued", full_page=False)

        page.locator("#jobs-name textarea, #jobs-name input").first.fill("line 3 retrain")
        page.locator("#jobs-rename").click()
        expect(details).to_contain_text(f"job {queued.id[:8]} · line 3 retrain")
        expect(page.locator("#jobs-table")).to_contain_text("line 3 retrain")
        assert client.get(queued.id).name == "line 3 retrain"
        page.locator("#jobs-table span:visible").filter(has_text="line 3 retrain").first.click()  # row: id and name
        expect(page.locator("#jobs-id textarea, #jobs-id input").first).to_have_value(queued.id)
        expect(page.locator("#jobs-name textarea, #jobs-name input").first).to_have_value("line 3 retrain")

        client.cancel(blocker.id)  # the opened job starts: the page follows it without a click
        expect(details).to_contain_text(f"Running · job {queued.id[:8]} · line 3 retrain", timeout=JOB_S)
        shot(page, "open-follows-running", full_page=False)
        page.locator("#jobs-cancel").click()
        expect(details).to_contain_text("Succeeded", timeout=JOB_S)
        expect(page).to_have_url(re.compile(f"job={queued.id}"))  # opened jobs go in the address too
    finally:
        cancel_and_wait(blocker, queued)


def test_an_ambiguous_short_id_says_so(page, monkeypatch):
    prefix = uuid.uuid4().hex[:6]
    for last in "12":  # two jobs whose ids start alike
        fixed_id = types.SimpleNamespace(hex=prefix + last * 26)
        monkeypatch.setattr(store_module, "uuid", types.SimpleNamespace(uuid4=lambda fixed_id=fixed_id: fixed_id))
        job = get_store().create("anomaly", {}, {})
        finish_job(get_store(), job.id, Status.CANCELLED, "test over")
    monkeypatch.undo()
    page.get_by_role("tab", name="Jobs").click()
    page.locator("#jobs-id textarea, #jobs-id input").first.fill(prefix)
    page.locator("#jobs-open").click()
    expect(page.locator("#jobs-details")).to_contain_text(f"2 jobs start with {prefix}: give more characters.")
    page.locator("#jobs-id textarea, #jobs-id input").first.fill(prefix + "1")
    page.locator("#jobs-open").click()
    expect(page.locator("#jobs-details")).to_contain_text(f"Cancelled · job {prefix}11")


def sign_in(browser, url: str, user: str):
    """A new window signed in as `user`."""
    ui = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    ui.set_default_timeout(60_000)
    ui.goto(url)
    ui.get_by_label("username").fill(user)
    ui.get_by_label("password").fill(ACCOUNTS[user])
    ui.get_by_role("button", name="Login").click()
    ui.get_by_text("Anomaly inspection (WinCLIP, WinCLIP+, MuSc, AnomalyDINO)").wait_for()
    return ui


def test_a_link_opens_the_job_for_its_owner_and_no_one_else(browser, shared_url, metal_plate_images):
    params = {"object_name": "metal plate", "preset": "winclip-tiny"}
    job = client.submit("anomaly", params, metal_plate_images[:1], owner="alice")
    assert client.wait(job.id, timeout=120).status is Status.SUCCEEDED
    alice = sign_in(browser, shared_url, "alice")
    try:
        alice.goto(f"{shared_url}?job={job.id[:8]}")  # the short id works in a link too
        expect(alice.locator("#anomaly-status")).to_contain_text(f"Succeeded · job {job.id[:8]}", timeout=JOB_S)
        alice.locator("#anomaly-gallery img").first.wait_for()  # the anomaly tab re-attached: its results
        shot(alice, "link-owner")
    finally:
        alice.context.close()
    bob = sign_in(browser, shared_url, "bob")
    try:
        bob.goto(f"{shared_url}?job={job.id}")
        expect(bob.locator("#jobs-details")).to_contain_text(f"No job {job.id}.", timeout=JOB_S)
        expect(bob.locator("#anomaly-status")).not_to_contain_text(job.id[:8])
        shot(bob, "link-other-user", full_page=False)
    finally:
        bob.context.close()


def test_on_a_phone_a_link_opens_its_tab_from_the_more_menu_and_its_section(page, app_url, tmp_path):
    """At 390 px the tool tabs after the first are in the tab bar's "more" menu, where the page finds the tab to
    show by its label (the tab bar's buttons carry its id)."""
    moving_square_video(tmp_path / "clip.mp4", frames=2, size=(96, 72))
    job = client.wait(client.submit("insertion", {"prompt": "a red ball", "preset": "insertion-tiny", "steps": 1,
                                                  "box": "20,10,60,50"}, {"video": [tmp_path / "clip.mp4"]}).id,
                      timeout=JOB_S / 1000)
    assert job.status is Status.SUCCEEDED, job.error
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{app_url}?job={job.id}")
    expect(page.locator("button[role=tab][aria-selected=true]").filter(has_text="Object insertion")).to_have_count(
        1, timeout=JOB_S)
    expect(page.locator("#insertion-video-status")).to_contain_text(f"Succeeded · job {job.id[:8]}", timeout=JOB_S)
    shot(page, "phone-link-opens-its-tab", full_page=False)


def test_reloading_after_a_run_shows_it_again_in_its_tab(page, metal_plate_images):
    page.locator("#anomaly-files input[type=file]").set_input_files([str(metal_plate_images[0])])
    page.locator("#anomaly-object textarea, #anomaly-object input").first.fill("metal plate")
    page.locator("#anomaly-preset input").click()
    page.get_by_role("option").filter(has_text="WinCLIP · tiny").click()
    page.locator("#anomaly-run").click()
    expect(page.locator("#anomaly-status")).to_contain_text("Succeeded", timeout=JOB_S)
    page.wait_for_url(re.compile(r"[?&]job=[0-9a-f]{32}"))
    short = page.url.split("job=")[1][:8]
    page.reload()
    expect(page.locator("#anomaly-status")).to_contain_text(f"Succeeded · job {short}", timeout=JOB_S)
    expect(page.locator("#anomaly-scores")).to_contain_text(metal_plate_images[0].name)
    # the form it was submitted with: the file, the object name, the model; one click runs it again
    name = metal_plate_images[0]
    expect(page.locator("#anomaly-files")).to_contain_text(re.compile(rf"{name.stem}\s*{re.escape(name.suffix)}"))
    expect(page.locator("#anomaly-object textarea, #anomaly-object input").first).to_have_value("metal plate")
    expect(page.locator("#anomaly-preset input")).to_have_value(re.compile("WinCLIP · tiny"))
    shot(page, "reload-keeps-form")
    page.locator("#anomaly-run").click()
    expect(page.locator("#anomaly-status")).not_to_contain_text(f"job {short}", timeout=JOB_S)
    expect(page.locator("#anomaly-status")).to_contain_text("Succeeded", timeout=JOB_S)
    expect(page.locator("#anomaly-scores")).to_contain_text(metal_plate_images[0].name)


def test_a_link_to_a_running_detector_training_opens_its_sub_tab_live(page, tmp_path):
    root = shape_detection_set(tmp_path / "set", count=8)
    archive = zip_tree(root, tmp_path / "shapes.zip")
    params = {"model_name": f"linked {uuid.uuid4().hex[:6]}", "preset": "detection-tiny", "steps": 100_000}
    job = client.submit("finetune_detect", params, {"dataset": [archive]})
    try:
        wait_running(job)
        page.goto(f"{page.url.split('?')[0]}?job={job.id[:8]}")
        status = page.locator("#detect-status")
        expect(status).to_contain_text(f"Running · job {job.id[:8]}", timeout=JOB_S)  # the Detector sub-tab
        expect(page.locator("#finetune-tabs").get_by_role("tab", name="Detector")).to_have_attribute(
            "aria-selected", "true")
        shot(page, "link-follows-detector", full_page=False)
        wait_until(lambda: client.get(job.id).progress > 0, 120, "a first training step", poll=0.2)  # a checkpoint
        page.locator("#detect-cancel").click()
        expect(status).to_contain_text("Succeeded", timeout=JOB_S)  # cancel keeps the best checkpoint
    finally:
        cancel_and_wait(job)


def test_jobs_deletes_a_finished_job_after_asking_and_not_a_running_one(page, tmp_path, metal_plate_images):
    running = long_training(tmp_path)
    done = client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"}, [metal_plate_images[0]],
                         name="to delete")
    try:
        wait_until(lambda: client.get(done.id).status.final, 120, "the inspection to end", poll=0.2)
        page.get_by_role("tab", name="Jobs").click()
        job_id, details = page.locator("#jobs-id textarea, #jobs-id input").first, page.locator("#jobs-details")
        confirm = page.locator("#jobs-delete-confirm")
        job_id.fill(running.id[:8])
        page.locator("#jobs-delete").click()
        expect(details).to_contain_text(f"Job {running.id[:8]} is", timeout=JOB_S)
        expect(details).to_contain_text("cancel it first, then delete it")
        expect(confirm).to_be_hidden()

        job_id.fill(done.id[:8])
        page.locator("#jobs-delete").click()
        expect(confirm).to_contain_text(f"Delete job {done.id[:8]} (to delete), anomaly, with its input files")
        expect(details).not_to_contain_text("cancel it first")  # said of the other job
        page.locator("#jobs-delete-no").click()  # Keep: nothing happens to it
        expect(confirm).to_be_hidden()
        assert client.get(done.id).status is Status.SUCCEEDED
        page.locator("#jobs-delete").click()
        shot(page, "delete-confirm", full_page=False)
        page.locator("#jobs-delete-yes").click()
        expect(details).to_contain_text(f"Deleted job {done.id[:8]} and its files (")
        expect(confirm).to_be_hidden()
        expect(job_id).to_have_value("")
        expect(page.locator("#jobs-table")).not_to_contain_text(done.id[:8])
        shot(page, "deleted", full_page=False)
        with pytest.raises(client.JobNotFound):
            client.get(done.id)
    finally:
        cancel_and_wait(running)
