"""Saved sets and models on a shared instance, through the API as two signed-in users: another user's private
ones are not offered and cannot be used or deleted; shared, they are offered read-only and downloadable."""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file

from tasks import client, finetune_models
from tests.e2e.conftest import ACCOUNTS
from tests.helpers import fake_model


def choices(api: Client, endpoint: str) -> dict[str, str]:
    """{value: label} of a dropdown of saved things, as the endpoint fills it for that user on page load."""
    return {value: label for label, value in api.predict(api_name=endpoint)["choices"]}


def test_private_until_shared_then_read_only(shared_url, shared_data, tmp_path):
    alice = Client(shared_url, auth=("alice", ACCOUNTS["alice"]), verbose=False)
    bob = Client(shared_url, auth=("bob", ACCOUNTS["bob"]), verbose=False)
    tile = shared_data / "anomaly" / "magnetic_tile"
    goods = [handle_file(str(p)) for p in sorted((tile / "train" / "good").glob("*.png"))[:2]]
    message, _ = alice.predict("line-3", goods, "magnetic tile", api_name="/save_reference_set")
    assert "Saved reference set **line-3**" in message
    finetune_models.save("scratches", fake_model(tmp_path / "model"), owner="alice")  # training: other tests
    test_image = handle_file(str(next((tile / "test").glob("*/*.png"))))

    assert "line-3" in choices(alice, "/reference_sets") and "scratches" in choices(alice, "/finetune_models")
    assert not any("line-3" in v for v in choices(bob, "/reference_sets"))
    assert not any("scratches" in v for v in choices(bob, "/finetune_models"))
    for ref in ("scratches", "alice/scratches"):
        assert f"No model named '{ref}'" in bob.predict(ref, api_name="/finetune_delete")[0]
        with pytest.raises(Exception, match=f"No model named '{ref}'"):
            bob.predict(ref, api_name="/finetune_download")
    with pytest.raises(Exception, match="No reference set named 'alice/line-3'"):
        bob.predict([test_image], None, "magnetic tile", "winclip-tiny", "Automatic", 0.5, "alice/line-3",
                    api_name="/anomaly")
    message, _, toggle = bob.predict("alice/line-3", True, api_name="/share_reference_sets")
    assert "No reference set named" in message and toggle["value"] is False

    message, dropdown, toggle = alice.predict("line-3", True, api_name="/share_reference_sets")
    assert "is shared with everyone" in message and dropdown["value"] == "line-3" and toggle["value"] is True
    alice.predict("scratches", True, api_name="/share_finetune_models")
    assert choices(bob, "/reference_sets")["alice/line-3"].endswith("· shared by alice")
    assert choices(bob, "/finetune_models")["alice/scratches"].startswith("scratches (classifier: ok, scratch")
    assert bob.predict("alice/scratches", api_name="/finetune_download").endswith("scratches.zip")
    status, *_ = bob.predict([test_image], None, "magnetic tile", "winclip-tiny", "Automatic", 0.5, "alice/line-3",
                             api_name="/anomaly")
    assert "Succeeded" in status
    assert "from set 'alice/line-3'" in client.list_jobs(1, owner="bob")[0].result["mode"]
    for endpoint, ref in (("/finetune_delete", "alice/scratches"), ("/delete_reference_set", "alice/line-3")):
        assert "shared by alice: only they can delete it" in bob.predict(ref, api_name=endpoint)[0]
    message, _, toggle = bob.predict("alice/scratches", False, api_name="/share_finetune_models")
    assert "only they can change the sharing" in message and toggle["value"] is True

    assert "Deleted model **scratches**" in alice.predict("scratches", api_name="/finetune_delete")[0]
    assert "Deleted reference set" in alice.predict("line-3", api_name="/delete_reference_set")[0]
    assert "alice/line-3" not in choices(bob, "/reference_sets")
