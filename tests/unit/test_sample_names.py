"""The fine-tuning samples name the model to save with a name the user has not taken, so a second run of a sample
trains instead of failing on "a model named 'sample parts' already exists"."""

from __future__ import annotations

import uuid

from tasks import finetune_models
from tests.helpers import fake_model
from webapp.samples import free_name


def test_a_taken_sample_name_gets_the_next_number(tmp_path):
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    assert free_name("sample parts", alice) == "sample parts"
    for number, name in enumerate(["sample parts", "sample parts 2"]):
        finetune_models.save(name, fake_model(tmp_path / str(number)), owner=alice)
    assert free_name("sample parts", alice) == "sample parts 3"
    finetune_models.set_shared("sample parts", True, owner=alice)
    assert free_name("sample parts", bob) == "sample parts"  # another's shared model does not take bob's name
