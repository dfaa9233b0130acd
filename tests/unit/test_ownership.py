"""Saved reference sets and models belong to their user: private by default, shared read-only, one namespace
per owner, the layout without accounts unchanged."""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from engine.errors import UserInputError
from engine.naming import is_key
from tasks import finetune_models, reference_sets
from tasks.named_folders import USERS_DIR, NamedFolders, owner_key
from tasks.store import get_store
from tests.helpers import fake_model


@pytest.fixture
def users() -> tuple[str, str]:
    """Two fresh user names, so tests never see each other's saved things."""
    tag = uuid.uuid4().hex[:6]
    return f"alice-{tag}", f"bob-{tag}"


@pytest.fixture(scope="module")
def goods(tmp_path_factory) -> list[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("goods")
    paths = []
    for index, colour in enumerate(((200, 200, 200), (190, 195, 200))):
        path = folder / f"good_{index}.png"
        Image.new("RGB", (32, 32), colour).save(path)
        paths.append((path.name, path))
    return paths


def message(exc_info: pytest.ExceptionInfo) -> str:
    return str(exc_info.value)


def test_a_set_is_private_to_its_owner_by_default(users, goods):
    alice, bob = users
    meta = reference_sets.save("line-3", goods, "plate", owner=alice)
    assert meta["owner"] == alice and meta["shared"] is False
    assert [s["ref"] for s in reference_sets.list_sets(owner=alice) if s["mine"]] == ["line-3"]
    assert "line-3" not in [s["name"] for s in reference_sets.list_sets(owner=bob)]
    assert "line-3" not in [s["name"] for s in reference_sets.list_sets()]  # nor the local user's
    for ref in ("line-3", f"{alice}/line-3"):
        with pytest.raises(UserInputError, match="No reference set named"):
            reference_sets.files(ref, owner=bob)
    with pytest.raises(UserInputError, match="No reference set named"):
        reference_sets.delete(f"{alice}/line-3", owner=bob)
    assert len(reference_sets.files("line-3", owner=alice)) == 2


def test_not_found_reads_the_same_whether_or_not_someone_else_has_the_name(users, goods):
    alice, bob = users
    reference_sets.save("secret", goods, owner=alice)

    def refusal(ref: str) -> str:
        with pytest.raises(UserInputError) as exc_info:
            reference_sets.get(ref, owner=bob)
        return message(exc_info).replace(ref, "<ref>")

    assert refusal("secret") == refusal("never-saved")
    assert refusal(f"{alice}/secret") == refusal(f"{alice}/never-saved") == refusal("nobody/secret")
    assert "secret" not in refusal("never-saved")


def test_a_shared_set_is_read_only_for_the_others(users, goods):
    alice, bob = users
    reference_sets.save("line-3", goods, owner=alice)
    assert reference_sets.set_shared("line-3", True, owner=alice)["shared"] is True
    seen = {s["ref"]: s for s in reference_sets.list_sets(owner=bob)}
    assert seen[f"{alice}/line-3"]["mine"] is False and seen[f"{alice}/line-3"]["owner"] == alice
    assert [name for name, _ in reference_sets.files(f"{alice}/line-3", owner=bob)] == [n for n, _ in goods]
    for change in (lambda: reference_sets.delete(f"{alice}/line-3", owner=bob),
                   lambda: reference_sets.set_shared(f"{alice}/line-3", False, owner=bob)):
        with pytest.raises(UserInputError, match=f"shared by {alice}: only they can"):
            change()
    with pytest.raises(UserInputError, match="No reference set named 'line-3'"):
        reference_sets.delete("line-3", owner=bob)  # bob has no set of his own by that name
    reference_sets.set_shared(f"{alice}/line-3", False, owner=alice)  # one's own, named either way
    with pytest.raises(UserInputError, match="No reference set named"):
        reference_sets.files(f"{alice}/line-3", owner=bob)
    reference_sets.delete("line-3", owner=alice)
    assert "line-3" not in [s["name"] for s in reference_sets.list_sets(owner=alice)]


def test_two_users_and_the_local_user_may_use_the_same_name(users, goods):
    alice, bob = users
    name = f"same-{uuid.uuid4().hex[:6]}"
    reference_sets.save(name, goods[:1], owner=alice)
    reference_sets.save(name, goods, owner=bob)
    reference_sets.save(name, goods, "local", owner=None)
    assert len(reference_sets.files(name, owner=alice)) == 1 and len(reference_sets.files(name, owner=bob)) == 2
    assert reference_sets.get(name)["object_name"] == "local"
    with pytest.raises(UserInputError, match="already exists"):
        reference_sets.save(name, goods, owner=alice)
    reference_sets.delete(name, owner=bob)
    assert len(reference_sets.files(name, owner=alice)) == 1
    reference_sets.delete(name)


def test_without_accounts_the_layout_is_unchanged_and_old_folders_still_work(goods):
    name = f"local-{uuid.uuid4().hex[:6]}"
    reference_sets.save(name, goods)
    assert (reference_sets.SETS.root / name / "set.json").is_file()
    old = reference_sets.SETS.root / f"old-{name}"  # saved before owners existed: no owner, no shared
    old.mkdir()
    (old / "000_good.png").write_bytes(goods[0][1].read_bytes())
    (old / "set.json").write_text(json.dumps({"name": old.name, "object_name": "", "files": ["000_good.png"],
                                              "created_at": 1.0}))
    listed = {s["ref"]: s for s in reference_sets.list_sets()}
    assert listed[old.name]["mine"] and listed[name]["mine"] and listed[old.name]["owner"] is None
    assert reference_sets.files(old.name) == [("good.png", old / "000_good.png")]
    with pytest.raises(UserInputError, match="Sharing needs sign-in"):
        reference_sets.set_shared(name, True)
    with pytest.raises(UserInputError, match="No reference set named"):
        reference_sets.get(old.name, owner="carol")  # a signed-in user does not get the local user's sets
    reference_sets.delete(old.name)
    reference_sets.delete(name)
    assert not old.exists()


def test_a_set_keeps_every_name_as_given_and_stores_its_images_under_keys(users, goods):
    alice, _ = users
    given = ["部品 1.png", "café.png", "é" * 125 + ".png", "a" * 251 + ".png", "my part.png", "my part.png"]
    picture = goods[0][1]
    reference_sets.save("names", [(name, picture) for name in given], owner=alice)
    folder = reference_sets.SETS.folder("names", alice)
    meta = json.loads((folder / "set.json").read_text())
    assert meta["names"] == given and len(set(meta["files"])) == len(given)
    assert all(is_key(key) and len(key.encode()) <= 120 and (folder / key).is_file() for key in meta["files"])
    assert reference_sets.files("names", owner=alice) == [(name, folder / key)
                                                           for name, key in zip(given, meta["files"], strict=True)]
    job = get_store().create("anomaly", {}, {"images": goods[:1],
                                             "references": reference_sets.files("names", owner=alice)})
    shown = [job.input_names[key] for key in job.inputs if key.startswith("references/")]
    assert shown == [*given[:-1], "my part (2).png"]  # as given; the one repeated name told apart as every job does


@pytest.mark.parametrize("owner", ["../../etc", "a/b", "..", "/abs", "ünï cödé", "x" * 300])
def test_owner_keys_cannot_leave_the_folder(owner, tmp_path):
    folders = NamedFolders(f"test-{uuid.uuid4().hex[:6]}", "meta.json", "thing", "things")
    folder = folders.folder("line-3", owner)
    key = owner_key(owner)
    assert folder == folders.root / USERS_DIR / key / "line-3"
    assert len(key) == 16 and all(c in "0123456789abcdef" for c in key)
    folders.publish("line-3", lambda tmp: tmp.mkdir() or {}, owner)
    assert folders.get("line-3", owner)["owner"] == owner
    assert folders.get(f"{owner}/line-3", owner)["mine"]  # one's own by either reference
    for ref in ("../line-3", "line-3/..", "/line-3", f"{owner}/../line-3"):
        with pytest.raises(UserInputError):
            folders.get(ref, "someone else")


def test_a_model_is_private_until_shared_then_downloadable_but_not_deletable(users, tmp_path):
    alice, bob = users
    finetune_models.save("scratches", fake_model(tmp_path / "model"), owner=alice)
    assert finetune_models.path("scratches", owner=alice).parent.name == owner_key(alice)
    for use in (lambda: finetune_models.resolve("scratches", owner=bob),
                lambda: finetune_models.export_zip(f"{alice}/scratches", tmp_path / "bob", owner=bob)):
        with pytest.raises(UserInputError, match="No model named"):
            use()
    assert "scratches" not in [m["name"] for m in finetune_models.list_models("classify", owner=bob)]
    finetune_models.set_shared("scratches", True, owner=alice)
    assert f"{alice}/scratches" in [m["ref"] for m in finetune_models.list_models("classify", owner=bob)]
    assert f"{alice}/scratches" not in [m["ref"] for m in finetune_models.list_models("detect", owner=bob)]
    exported = finetune_models.export_zip(f"{alice}/scratches", tmp_path / "bob", owner=bob)
    with pytest.raises(UserInputError, match=f"shared by {alice}: only they can delete"):
        finetune_models.delete(f"{alice}/scratches", owner=bob)
    copy = finetune_models.import_zip("my scratches", exported, owner=bob)  # the zip says shared: ignored
    assert copy["owner"] == bob and copy["shared"] is False
    assert finetune_models.get("my scratches", owner=bob)["classes"] == ["ok", "scratch"]
    with pytest.raises(UserInputError, match="No model named"):
        finetune_models.get(f"{bob}/my scratches", owner=alice)
    finetune_models.delete("my scratches", owner=bob)
    finetune_models.delete("scratches", owner=alice)
    with pytest.raises(UserInputError, match="No model named"):
        finetune_models.get(f"{alice}/scratches", owner=bob)


def test_listings_parse_a_meta_file_again_only_when_it_changed(users, tmp_path, monkeypatch):
    """Every user's listing reads every user's model files (to find the shared ones): one user's many or large
    ones must not cost everyone a parse of each on every page load."""
    import types

    from tasks import named_folders

    alice, bob = users
    finetune_models.save("parsed once", fake_model(tmp_path / "model"), owner=alice)
    parsed = []
    monkeypatch.setattr(named_folders, "json", types.SimpleNamespace(
        loads=lambda text: parsed.append(text) or json.loads(text), dumps=json.dumps))
    finetune_models.list_models(owner=alice)
    first = len(parsed)
    for _ in range(3):
        finetune_models.list_models(owner=alice)
        finetune_models.list_models(owner=bob)
    assert len(parsed) == first  # nothing changed: nothing parsed again
    finetune_models.set_shared("parsed once", True, owner=alice)  # its meta file replaced
    assert f"{alice}/parsed once" in [m["ref"] for m in finetune_models.list_models(owner=bob)]
    finetune_models.delete("parsed once", owner=alice)


def test_an_uploaded_meta_cannot_claim_an_owner_or_sharing(users, tmp_path):
    alice, bob = users
    finetune_models.save("claims", fake_model(tmp_path / "model", owner=alice, shared=True), owner=bob)
    assert finetune_models.get("claims", owner=bob)["shared"] is False
    assert "claims" not in [m["name"] for m in finetune_models.list_models(owner=alice)]
    finetune_models.delete("claims", owner=bob)


@pytest.mark.parametrize("field, value", [("created_at", "yesterday"), ("created_at", float("nan")),
                                          ("classes", [["ok"], 3]), ("classes", "ok"), ("classes", ["c"] * 1001),
                                          ("base_preset", ["x"])])
def test_an_uploaded_model_with_a_mistyped_field_is_refused_and_every_listing_still_works(users, tmp_path, field,
                                                                                           value):
    """Every user's model list reads each owner's model files (sorted by time, classes joined in a label): one
    mistyped field in an uploaded model.json broke it for everyone, the uploader's private models included (and
    a shared model's label lists all its classes, so their number is bounded as a training set's is)."""
    import shutil

    alice, bob = users
    lying = fake_model(tmp_path / "model", **{field: value})
    archive = shutil.make_archive(str(tmp_path / "lying"), "zip", lying)
    with pytest.raises(UserInputError, match=f"model.json is damaged \\({field}"):
        finetune_models.import_zip("lying", Path(archive), owner=alice)
    finetune_models.save("fine", fake_model(tmp_path / "fine", created_at=1.0), owner=alice)
    finetune_models.set_shared("fine", True, owner=alice)
    assert [m["name"] for m in finetune_models.list_models(owner=alice) if m["owner"] == alice] == ["fine"]
    assert f"{alice}/fine" in [m["ref"] for m in finetune_models.list_models(owner=bob)]
    finetune_models.delete("fine", owner=alice)


def test_an_uploaded_model_file_with_a_huge_meta_is_refused(users, tmp_path, monkeypatch):
    """A 117 kB zip held a 120 MB model.json: stored (even private), it made every user's model list parse it, 2.5 s
    of the web process each time."""
    import shutil

    alice, _ = users
    monkeypatch.setattr(finetune_models, "MAX_UPLOADED_META_BYTES", 2**20, raising=False)
    padded = fake_model(tmp_path / "model", metrics={"padding": "x" * 2**20})
    with pytest.raises(UserInputError, match=r"model\.json takes 1 MB; a model file's model\.json is at most 1 MB"):
        finetune_models.import_zip("padded", Path(shutil.make_archive(str(tmp_path / "padded"), "zip", padded)),
                                   owner=alice)
    assert "padded" not in [m["name"] for m in finetune_models.list_models(owner=alice)]


@pytest.mark.parametrize("name", ["pcb défauts", "../x", " ", "-first"])
def test_a_refused_name_says_which_characters_are_accepted(name):
    folders = NamedFolders(f"test-{uuid.uuid4().hex[:6]}", "meta.json", "thing", "things")
    with pytest.raises(UserInputError, match=r"is not accepted: use 1 to 60 letters without accents \(A-Z, a-z\)"):
        folders.folder(name)


def test_a_long_or_multi_line_name_is_quoted_short_and_as_typed():
    folders = NamedFolders(f"test-{uuid.uuid4().hex[:6]}", "meta.json", "thing", "things")
    with pytest.raises(UserInputError) as long_name:
        folders.folder("n" * 500)
    assert f"'{'n' * 59}…'" in str(long_name.value) and "n" * 61 not in str(long_name.value)
    with pytest.raises(UserInputError) as two_lines:
        folders.get("name\nline")
    assert "'name\nline'" in str(two_lines.value)  # not its repr ('name\\nline'), which a page escaped again


def test_a_downloaded_model_zipped_again_as_a_folder_is_accepted_and_junk_is_refused_plainly(users, tmp_path):
    """Unzipping a model file and compressing its folder (the Finder adds __MACOSX/) gives 'folder/model.json':
    that is the same model. A zip with no model in it is refused without naming the server's scratch folder."""
    alice, _ = users
    model = fake_model(tmp_path / "my model")
    archive = tmp_path / "my model.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for file in model.iterdir():
            bundle.write(file, f"my model/{file.name}")
        bundle.writestr("__MACOSX/my model/._model.json", b"\0")
    meta = finetune_models.import_zip("rezipped", archive, owner=alice)
    assert meta["classes"] == ["ok", "scratch"]
    finetune_models.delete("rezipped", owner=alice)
    junk = tmp_path / "holiday.zip"
    with zipfile.ZipFile(junk, "w") as bundle:
        bundle.writestr("photo.jpg", b"x")
    with pytest.raises(UserInputError) as refused:
        finetune_models.import_zip("junk", junk, owner=alice)
    assert message(refused) == ("holiday.zip is not a model file downloaded from this tool: not a fine-tuned model "
                                "(no readable model.json).")
