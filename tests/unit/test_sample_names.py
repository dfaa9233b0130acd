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
    assert free_name("sample parts 2", alice) == "sample parts 3"  # a reloaded training's name counts on
    assert free_name("line 7", alice) == "line 7"  # a free name with a number is kept as it is
    finetune_models.set_shared("sample parts", True, owner=alice)
    assert free_name("sample parts", bob) == "sample parts"  # another's shared model does not take bob's name


def test_every_event_that_asks_who_is_signed_in_is_told():
    """Gradio hands `gr.Request` only to a positional parameter: one after `*args` stays None and the handler runs
    as the local user (a sample's free model name was looked up among nobody's models, so the second training of
    a signed-in user failed on "already exists")."""
    import inspect

    from webapp.app import build_app

    demo = build_app()
    asking = [(fn.name, param) for fn in demo.fns.values() if fn.fn is not None
              for param in inspect.signature(fn.fn).parameters.values() if "Request" in str(param.annotation)]
    assert len(asking) > 20
    assert [name for name, param in asking if param.kind not in (param.POSITIONAL_ONLY,
                                                                 param.POSITIONAL_OR_KEYWORD)] == []
