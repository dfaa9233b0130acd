"""WinCLIP's torch model: prefix-shared text encoding and batched window embeddings on an open_clip CLIP.

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


class PrefixTree:
    """Token sequences merged on their common prefixes: one node per distinct prefix.

    `tokens[n]` and `depths[n]` are node n's token and position, `ancestors[n, m]` whether node m
    is node n or one of its ancestors, `ends[i]` the node of sequence i's last token. Parents
    always come before their children.
    """

    def __init__(self, sequences: Sequence[Sequence[int]]) -> None:
        import numpy as np

        index: dict[tuple[int, int], int] = {}
        parents: list[int] = []
        self.tokens: list[int] = []
        self.depths: list[int] = []
        self.ends: list[int] = []
        for sequence in sequences:
            node = -1
            for depth, token in enumerate(sequence):
                key = (node, token)
                if key not in index:
                    index[key] = len(self.tokens)
                    parents.append(node)
                    self.tokens.append(token)
                    self.depths.append(depth)
                node = index[key]
            self.ends.append(node)
        self.ancestors = np.zeros((len(self.tokens), len(self.tokens)), dtype=bool)
        for node, parent in enumerate(parents):
            if parent >= 0:
                self.ancestors[node] = self.ancestors[parent]
            self.ancestors[node, node] = True


def _prefix_chunks(rows: Sequence[tuple[int, ...]], max_tokens: int) -> list[list[int]]:
    """Indices of `rows`, sorted so shared prefixes sit together, cut into chunks of at most
    `max_tokens` tree nodes (a prompt longer than that gets a chunk of its own)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    seen: set[tuple[int, ...]] = set()
    for i in sorted(range(len(rows)), key=lambda i: rows[i]):
        new = {rows[i][: d + 1] for d in range(len(rows[i]))} - seen
        if current and len(seen) + len(new) > max_tokens:
            chunks.append(current)
            current, seen = [], set()
            new = {rows[i][: d + 1] for d in range(len(rows[i]))}
        current.append(i)
        seen |= new
    if current:
        chunks.append(current)
    return chunks


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
        """Unnormalised text embeddings (N, D), with each shared token prefix computed once.

        CLIP's text transformer is causal and pools the end-of-text token, so a token's state
        depends only on the tokens before it. The prompt ensemble repeats the same prefixes
        ("a cropped photo of the ...") hundreds of times: the prompts are merged into a prefix
        tree, every tree node is one token of a single sequence, and the attention mask lets each
        node see exactly its ancestors, at its depth's position embedding. The same arithmetic as
        running each prompt alone (up to float summation order), on about a third of the tokens.
        """
        clip = self.clip
        device = clip.token_embedding.weight.device
        tokens = self.tokenizer(list(prompts))
        if getattr(clip, "text_pool_type", "argmax") != "argmax" or not hasattr(clip, "attn_mask"):
            return clip.encode_text(tokens.to(device))
        lengths = (tokens.argmax(dim=-1) + 1).tolist()  # the end-of-text token has the highest id
        rows = [tuple(row[:length]) for row, length in zip(tokens.tolist(), lengths, strict=True)]
        output: torch.Tensor | None = None
        for chunk in _prefix_chunks(rows, self.MAX_TREE_TOKENS):
            tree = PrefixTree([rows[i] for i in chunk])
            embeddings = self._encode_tree(tree, device)
            if output is None:
                output = embeddings.new_empty(len(prompts), embeddings.shape[-1])
            output[torch.tensor(chunk, device=device)] = embeddings
        return output

    MAX_TREE_TOKENS = 1536  # bounds the (tokens x tokens) attention mask of one pass

    def _encode_tree(self, tree: PrefixTree, device: torch.device) -> torch.Tensor:
        """Embeddings of the prompts of one prefix tree, in the tree's prompt order."""
        clip = self.clip
        cast_dtype = clip.transformer.get_cast_dtype()
        token_ids = torch.tensor(tree.tokens, device=device)
        positions = torch.tensor(tree.depths, device=device)
        x = clip.token_embedding(token_ids).to(cast_dtype) + clip.positional_embedding[positions].to(cast_dtype)
        mask = torch.full(tree.ancestors.shape, float("-inf"), device=device, dtype=cast_dtype)
        mask.masked_fill_(torch.from_numpy(tree.ancestors).to(device), 0.0)
        x = clip.transformer(x[None], attn_mask=mask)[0]
        x = clip.ln_final(x[torch.tensor(tree.ends, device=device)])
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
