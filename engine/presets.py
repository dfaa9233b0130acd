"""Model presets: a name for each model the tools offer, with its real weights or a tiny config.

Torch-free on purpose: the web process lists presets without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import UserInputError


@dataclass(frozen=True)
class Preset:
    """One selectable model.

    `family` names the loader that reads it (see `engine.loading.FAMILIES`: "open_clip", ...).
    For open_clip, `architecture` is the model name and `pretrained` the tag of the real weights;
    other families use `pretrained` for hub repository ids. `pretrained` is None for a preset
    built from `config` with random weights.
    """

    name: str
    tool: str
    label: str
    architecture: str
    family: str = "open_clip"
    pretrained: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def random_weights(self) -> bool:
        return self.pretrained is None


_TINY_CLIP_CONFIG: dict[str, Any] = {
    # Same 240 px input and 16 px patches as ViT-B-16-plus-240 (a 15 x 15 patch grid, so the
    # window logic is exercised exactly), but 2 narrow layers: runs in milliseconds on a CPU.
    "embed_dim": 32,
    "vision_cfg": {"image_size": 240, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="winclip-vit-b-16-plus-240",
            tool="anomaly",
            label="WinCLIP · ViT-B-16-plus-240 (LAION-400M, e32)",
            architecture="ViT-B-16-plus-240",
            pretrained="laion400m_e32",
            description="The WinCLIP paper's backbone: open_clip ViT-B-16-plus-240, 240 px input.",
        ),
        Preset(
            name="winclip-tiny",
            tool="anomaly",
            label="WinCLIP · tiny (random weights: tests the plumbing, scores are meaningless)",
            architecture="winclip-tiny",
            config=_TINY_CLIP_CONFIG,
            description="A 2-layer CLIP with random weights for tests and demos of the plumbing.",
        ),
    )
}


def get_preset(name: str) -> Preset:
    """Look a preset up by name, with a message that lists the accepted names."""
    try:
        return PRESETS[name]
    except KeyError:
        accepted = ", ".join(sorted(PRESETS))
        raise UserInputError(f"Unknown model preset {name!r}; accepted: {accepted}.") from None


def presets_for(tool: str) -> list[Preset]:
    """Presets of one tool, real weights first."""
    return sorted((p for p in PRESETS.values() if p.tool == tool), key=lambda p: p.random_weights)
