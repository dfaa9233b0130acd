"""The extended-attention processor really reads the anchor's keys and values."""

from __future__ import annotations

import pytest
import torch

from engine.insertion.attention import AnchorStore, ExtendedAttnProcessor


def test_processor_records_plain_attention_and_extends_over_the_anchor_keys_and_values():
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    torch.manual_seed(0)
    attn = Attention(query_dim=16, heads=2, dim_head=8).eval()
    anchor = torch.randn(2, 6, 16)  # (unconditional, conditional) halves of classifier-free guidance
    frames = torch.randn(4, 5, 16)  # two frames per half
    store = AnchorStore()
    processor = ExtendedAttnProcessor(store, "layer")
    with torch.no_grad():
        store.begin("record")
        torch.testing.assert_close(processor(attn, anchor), AttnProcessor2_0()(attn, anchor), rtol=0, atol=0)
        recorded = store.entries
        store.begin("extend", recorded)
        extended = processor(attn, frames)
        plain = AttnProcessor2_0()(attn, frames)

        heads = lambda t: t.view(t.shape[0], t.shape[1], 2, 8).transpose(1, 2)  # noqa: E731
        anchor_k, anchor_v = attn.to_k(anchor).repeat_interleave(2, 0), attn.to_v(anchor).repeat_interleave(2, 0)
        q = heads(attn.to_q(frames))
        k = heads(torch.cat([attn.to_k(frames), anchor_k], dim=1))
        v = heads(torch.cat([attn.to_v(frames), anchor_v], dim=1))
        weights = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
        expected = attn.to_out[0]((weights @ v).transpose(1, 2).reshape(4, 5, 16))
    assert k.shape[2] == 5 + 6  # own tokens + anchor tokens
    assert not torch.allclose(extended, plain, atol=1e-3)
    torch.testing.assert_close(extended, expected, rtol=1e-5, atol=1e-5)


def test_extending_without_a_recorded_step_says_why():
    store = AnchorStore()
    store.begin("extend", {(0, "other"): (torch.zeros(1), torch.zeros(1))})
    with pytest.raises(RuntimeError, match="same steps and strength"):
        store.get("layer")
