"""Extended self-attention (InVi): later frames attend to the anchor frame's keys and values.

diffusers no longer ships a cross-frame processor (Text2Video-Zero's was deprecated in 0.38), so
this is our own. One `AnchorStore` is shared by the processors of every self-attention layer
(`*.attn1.processor`) of the UNet:

- "off": plain scaled dot-product attention, the same computation as diffusers' `AttnProcessor2_0`;
- "record": the same output, and each layer's keys and values are kept per denoising step;
- "extend": each layer attends over [own keys, anchor keys] and [own values, anchor values] of
  the same step, so what the anchor frame generated (the inserted object) steers every later frame.

The pipeline calls `next_step()` after every denoising step.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Mode = Literal["off", "record", "extend"]


class AnchorStore:
    """The anchor frame's self-attention keys and values, by (denoising step, layer name)."""

    def __init__(self) -> None:
        self.mode: Mode = "off"
        self.step = 0
        self.entries: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def begin(self, mode: Mode, anchor: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] | None = None) -> None:
        """Start a denoising run: "record" into a fresh table, "extend" reading `anchor` (a recorded table)."""
        if mode == "extend" and not anchor:
            raise ValueError("Extended attention needs the anchor frame's recorded keys and values.")
        self.mode, self.step = mode, 0
        self.entries = anchor if mode == "extend" else {}

    def next_step(self) -> None:
        self.step += 1

    @property
    def recorded_steps(self) -> int:
        return len({step for step, _ in self.entries})

    def put(self, layer: str, key: torch.Tensor, value: torch.Tensor) -> None:
        self.entries[(self.step, layer)] = (key.detach(), value.detach())

    def get(self, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return self.entries[(self.step, layer)]
        except KeyError:
            raise RuntimeError(
                f"No anchor keys for step {self.step}, layer {layer}: the anchor was recorded with "
                f"{self.recorded_steps} steps; a following frame must use the same steps and strength."
            ) from None

    def nbytes(self) -> int:
        return sum(k.nbytes + v.nbytes for k, v in self.entries.values())


def _heads(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, inner = tensor.shape
    return tensor.view(batch, length, heads, inner // heads).transpose(1, 2)


def _with_anchor(own: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """[own, anchor] along the token axis; the anchor's batch (e.g. unconditional, conditional halves of
    classifier-free guidance) is repeated for the frames of each half."""
    if own.shape[0] % anchor.shape[0]:
        raise RuntimeError(f"A batch of {own.shape[0]} cannot be paired with an anchor batch of {anchor.shape[0]}.")
    anchor = anchor.to(own.dtype).repeat_interleave(own.shape[0] // anchor.shape[0], dim=0)
    return torch.cat([own, anchor], dim=1)


class ExtendedAttnProcessor:
    """Self-attention processor of one layer; reads and writes the shared `AnchorStore`."""

    def __init__(self, store: AnchorStore, layer: str) -> None:
        self.store = store
        self.layer = layer

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args, **kwargs) -> torch.Tensor:
        if encoder_hidden_states is not None or attention_mask is not None:
            raise ValueError("ExtendedAttnProcessor is for unmasked self-attention (attn1) layers only.")
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch = hidden_states.shape[0]
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)
        if self.store.mode == "record":
            self.store.put(self.layer, key, value)
        elif self.store.mode == "extend":
            anchor_key, anchor_value = self.store.get(self.layer)
            key, value = _with_anchor(key, anchor_key), _with_anchor(value, anchor_value)

        query, key, value = (_heads(t, attn.heads) for t in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        hidden_states = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, attn.heads * query.shape[-1])
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states.to(query.dtype)))

        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def install(unet: torch.nn.Module, store: AnchorStore) -> int:
    """Give every self-attention layer of `unet` an extended processor on `store`; returns how many."""
    processors = {}
    for name, processor in unet.attn_processors.items():
        processors[name] = ExtendedAttnProcessor(store, name) if name.endswith("attn1.processor") else processor
    extended = sum(isinstance(p, ExtendedAttnProcessor) for p in processors.values())
    unet.set_attn_processor(processors)  # empties the dict it is given
    return extended
