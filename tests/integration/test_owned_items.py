"""Saved sets and models through the job API with two users: another user's private set or model cannot be used
by naming it (as a reference set, in prediction, in completion: refused at submit, worded as for a model that does not
exist), a shared one can, and it is never theirs to delete."""

from __future__ import annotations

import uuid

import pytest
import torch

from engine.errors import UserInputError
from tasks import client, embedded, finetune_models, reference_sets
from tasks.client import Status
from tests.helpers import colour_classes, zip_tree

torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a shared CPU


@pytest.fixture(scope="module", autouse=True)
def worker():
    embedded.ensure_started()


def test_another_users_set_and_model_are_usable_only_once_shared(metal_plate_images, tmp_path):
    tag = uuid.uuid4().hex[:6]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    root = colour_classes(tmp_path / "colours", per_class=4)
    params = {"model_name": "colours", "preset": "finetune-clip-tiny", "method": "linear", "steps": 3}
    trained = client.wait(client.submit("finetune_classify", params, {"dataset": [zip_tree(root, tmp_path / "c.zip")]},
                                        owner=alice).id, timeout=180)
    assert trained.status is Status.SUCCEEDED, trained.error
    reference_sets.save("line-3", [(p.name, p) for p in metal_plate_images[2:4]], "metal plate", owner=alice)
    red = sorted((root / "red").glob("*.png"))[:1]
    anomaly = {"object_name": "plate", "preset": "winclip-tiny"}

    def predict(owner: str, model: str) -> client.Job:
        return client.wait(client.submit("finetune_predict", {"model": model}, {"images": red}, owner=owner).id,
                           timeout=120)

    def refusal(tool: str, params: dict, owner: str) -> str:
        """A model that is not `owner`'s to use is refused at submit (its job used to fail), nothing stored."""
        before = len(client.list_jobs(limit=10_000))
        with pytest.raises(UserInputError) as refused:
            client.submit(tool, params, {"images": red}, owner=owner)
        assert len(client.list_jobs(limit=10_000)) == before
        return str(refused.value)

    # Private: bob cannot use them, by their name or as alice's, and the answer does not say they exist.
    for ref in ("line-3", f"{alice}/line-3"):
        with pytest.raises(UserInputError, match=f"No reference set named '{ref}'"):
            client.submit("anomaly", {**anomaly, "reference_set": ref}, metal_plate_images[:1], owner=bob)
    refused = [refusal("finetune_predict", {"model": ref}, bob)
               for ref in ("colours", f"{alice}/colours", f"{alice}/never-trained")]
    assert refused[0].startswith("No model named 'colours'")
    assert refused[1].replace("colours", "X") == refused[2].replace("never-trained", "X")
    assert refusal("completion", {"detector_model": f"{alice}/colours"}, bob).startswith(
        f"No model named '{alice}/colours'")
    assert predict(alice, "colours").status is Status.SUCCEEDED  # its owner can

    # Shared: bob uses them as alice's, read-only.
    finetune_models.set_shared("colours", True, owner=alice)
    reference_sets.set_shared("line-3", True, owner=alice)
    used = predict(bob, f"{alice}/colours")
    assert used.status is Status.SUCCEEDED, used.error
    assert used.owner == bob and used.result["classes"] == ["blue", "green", "red"]
    assert len(used.result["predictions"]) == 1
    inspected = client.wait(client.submit("anomaly", {**anomaly, "reference_set": f"{alice}/line-3"},
                                          metal_plate_images[:1], owner=bob).id, timeout=120)
    assert inspected.status is Status.SUCCEEDED, inspected.error
    assert inspected.result["threshold"]["source"] == "calibrated"
    for delete in (lambda: finetune_models.delete(f"{alice}/colours", owner=bob),
                   lambda: reference_sets.delete(f"{alice}/line-3", owner=bob)):
        with pytest.raises(UserInputError, match=f"shared by {alice}: only they can delete"):
            delete()
    assert refusal("finetune_predict", {"model": "colours"}, bob).startswith("No model named 'colours'")  # not his

    # Made private again: refused once more; then its owner deletes it.
    finetune_models.set_shared("colours", False, owner=alice)
    assert refusal("finetune_predict", {"model": f"{alice}/colours"}, bob).startswith(
        f"No model named '{alice}/colours'")
    finetune_models.delete("colours", owner=alice)
    reference_sets.delete("line-3", owner=alice)
