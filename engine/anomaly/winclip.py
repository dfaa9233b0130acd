"""WinCLIP's torch model: trimmed text encoding and batched window embeddings on an open_clip CLIP.

Follows Jeong et al. (CVPR 2023): the tokens of each k x k window of patches (after patch and
positional embedding) plus the class token go through the rest of the vision transformer as
short sequences, all windows of a scale in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from engine.anomaly.scoring import window_patch_indices
from engine.errors import UserInputError


@dataclass
class ImageEmbeddings:
    image: torch.Tensor  # (B, D) class-token embedding of the whole image
    windows: list[torch.Tensor]  # per scale: (B, windows, D)
    patches: torch.Tensor  # (B, patches, W) patch tokens of the whole-image pass (WinCLIP+ memory)


class WinClipModel(nn.Module):
    """Wraps an open_clip `CLIP` with a `VisionTransformer` visual tower (ViT-B-16-plus-240 etc.)."""

    def __init__(
        self,
        clip: nn.Module,
        tokenizer: Callable[..., torch.Tensor],
        scales: Sequence[int] = (2, 3),
        temperature: float = 0.07,
    ) -> None:
        super().__init__()
        visual = getattr(clip, "visual", None)
        needed = ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer", "_pool")
        if visual is None or any(not hasattr(visual, attr) for attr in needed):
            raise UserInputError("WinCLIP needs an open_clip CLIP model with a VisionTransformer visual tower.")
        self.clip = clip
        self.tokenizer = tokenizer
        self.temperature = temperature
        self.scales = tuple(scales)
        self.grid: tuple[int, int] = tuple(visual.grid_size)
        self.image_size: tuple[int, int] = tuple(visual.image_size)
        for scale in self.scales:
            self.register_buffer(f"windows_{scale}", window_patch_indices(self.grid, scale), persistent=False)

    def windows(self, scale: int) -> torch.Tensor:
        """(windows, scale * scale) patch indices of one scale."""
        return getattr(self, f"windows_{scale}")

    # -- text ---------------------------------------------------------------------------------
    def encode_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """Unnormalised text embeddings (N, D).

        CLIP's text transformer is causal and pools the end-of-text token, so each prompt only
        needs the context up to its own end-of-text token: prompts are grouped by that length and
        each group runs on its trimmed context. Exact, and several times cheaper than the full
        77-token context.
        """
        clip = self.clip
        device = clip.token_embedding.weight.device
        tokens = self.tokenizer(list(prompts)).to(device)
        if getattr(clip, "text_pool_type", "argmax") != "argmax" or not hasattr(clip, "attn_mask"):
            return clip.encode_text(tokens)
        lengths = tokens.argmax(dim=-1) + 1  # the end-of-text token has the highest id
        output: torch.Tensor | None = None
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().squeeze(1)
            embeddings = self._encode_trimmed(tokens[rows, :length])
            if output is None:
                output = embeddings.new_empty(len(prompts), embeddings.shape[-1])
            output[rows] = embeddings
        return output

    def _encode_trimmed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Text embeddings of token rows whose end-of-text token is the last column."""
        clip = self.clip
        length = tokens.shape[1]
        cast_dtype = clip.transformer.get_cast_dtype()
        x = clip.token_embedding(tokens).to(cast_dtype) + clip.positional_embedding[:length].to(cast_dtype)
        x = clip.transformer(x, attn_mask=clip.attn_mask[:length, :length])
        x = clip.ln_final(x[:, -1])
        projection = clip.text_projection
        return projection(x) if isinstance(projection, nn.Linear) else x @ projection

    # -- image --------------------------------------------------------------------------------
    def patch_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """Class token + patch tokens with positional embedding, before the transformer: (B, 1+N, W)."""
        visual = self.clip.visual
        x = visual.conv1(pixels)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        return torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Run token sequences (N, L, W) through the vision transformer; class-token embeddings (N, D)."""
        return self._encode(tokens)[0]

    def _encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(projected class-token embeddings, normalised output tokens other than the class token).

        open_clip >= 2.26 transformers take batch-first input and transpose internally if needed.
        """
        visual = self.clip.visual
        x = visual.ln_pre(visual.patch_dropout(tokens))
        x = visual.transformer(x)
        pooled, rest = visual._pool(x)
        return (pooled @ visual.proj if visual.proj is not None else pooled), rest

    def window_embeddings(self, tokens: torch.Tensor, scale: int) -> torch.Tensor:
        """Embeddings of all windows of one scale, in one batched pass: (B, windows, D)."""
        windows = self.windows(scale)
        index = torch.cat([torch.zeros_like(windows[:, :1]), windows + 1], dim=1)  # class token first
        batch, n_windows = tokens.shape[0], windows.shape[0]
        sequences = tokens[:, index].reshape(batch * n_windows, index.shape[1], tokens.shape[-1])
        return self.encode_tokens(sequences).reshape(batch, n_windows, -1)

    def encode_image(self, pixels: torch.Tensor) -> ImageEmbeddings:
        """Whole-image and window embeddings of a normalised batch (B, 3, H, W)."""
        tokens = self.patch_tokens(pixels)
        image, patches = self._encode(tokens)
        windows = [self.window_embeddings(tokens, s) for s in self.scales]
        return ImageEmbeddings(image=image, windows=windows, patches=patches)
