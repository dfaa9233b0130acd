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
    For open_clip, `architecture` is the model name, `pretrained` the tag of the real weights and
    `config["hub_repo"]` the hub repository open_clip downloads for that tag (written here so the web
    process can check the cache without importing open_clip and torch; a test checks it against open_clip);
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
    method: str = ""  # anomaly presets: the method that reads them ("winclip", "musc", "anomalydino")

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

_TINY_MUSC_CLIP_CONFIG: dict[str, Any] = {
    # The tiny CLIP with 4 layers, so MuSc reads one layer per quarter of the depth as it does on ViT-L's 24.
    **_TINY_CLIP_CONFIG,
    "vision_cfg": {**_TINY_CLIP_CONFIG["vision_cfg"], "layers": 4},
}

_TINY_OWLV2_CONFIG: dict[str, Any] = {
    # transformers' test config for OWLv2, with a 64 px input in 4 px patches: the same 16 x 16
    # grid of predicted boxes as the tests' 32 px / 2 px, so exemplar choice, padding and NMS
    # are exercised on real-sized images, in milliseconds on a CPU.
    "vision_config": {"image_size": 64, "patch_size": 4, "hidden_size": 32, "num_hidden_layers": 2,
                      "num_attention_heads": 4, "intermediate_size": 37},
    "text_config": {"vocab_size": 99, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 37,
                    "max_position_embeddings": 16},
    "projection_dim": 64,
}

_TINY_INSERTION_CONFIG: dict[str, Any] = {
    # diffusers' own fast-test sizes for the ControlNet inpaint pipeline: a 2-level UNet and ControlNet,
    # a 2-level VAE (latents at half the pixel size) and a 5-layer, 32-wide CLIP text encoder whose
    # byte-level tokenizer is built locally. 32 px crops (sample_size 16): a step takes milliseconds on a CPU.
    "unet": {"block_out_channels": [32, 64], "layers_per_block": 2, "sample_size": 16, "in_channels": 4,
             "out_channels": 4, "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "cross_attention_dim": 32},
    "controlnet": {"block_out_channels": [32, 64], "layers_per_block": 2, "in_channels": 4,
                   "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"], "cross_attention_dim": 32,
                   "conditioning_embedding_out_channels": [16, 32]},
    "vae": {"block_out_channels": [32, 64], "in_channels": 3, "out_channels": 3, "latent_channels": 4,
            "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
            "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"]},
    "text_encoder": {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 5,
                     "vocab_size": 1000, "max_position_embeddings": 77},
}

_TINY_FINETUNE_CLIP_CONFIG: dict[str, Any] = {
    # The tiny CLIP at 64 px (a 4 x 4 patch grid): a training step takes milliseconds on a CPU.
    **_TINY_CLIP_CONFIG,
    "vision_cfg": {**_TINY_CLIP_CONFIG["vision_cfg"], "image_size": 64},
}

_TINY_RTDETR_CONFIG: dict[str, Any] = {
    # transformers' RT-DETR test sizes (a 64-channel stem, a 4-stage ResNet of 10-40 channels, a 32-wide
    # hybrid encoder, a 2-layer decoder, 30 queries) at a 64 px input: a training step takes tens of
    # milliseconds on a CPU.
    "model": {
        "backbone_config": {"model_type": "rt_detr_resnet", "embedding_size": 64, "hidden_sizes": [10, 20, 30, 40],
                            "depths": [1, 1, 2, 1], "out_features": ["stage2", "stage3", "stage4"],
                            "out_indices": [2, 3, 4]},
        "encoder_hidden_dim": 32, "encoder_in_channels": [20, 30, 40], "encoder_ffn_dim": 64,
        "encoder_attention_heads": 2, "d_model": 32, "num_queries": 30, "decoder_in_channels": [32, 32, 32],
        "decoder_ffn_dim": 64, "decoder_layers": 2, "decoder_attention_heads": 2, "num_denoising": 0,
    },
    "image_size": 64,
    "learning_rate": 3e-3,  # random weights: a high rate, so simple shapes are learnt in a hundred steps
}

ANOMALYDINO_RESOLUTION = 448  # AnomalyDINO's default smaller image edge (authors' run_anomalydino.py --resolution)

_TINY_DINOV2_CONFIG: dict[str, Any] = {
    # DINOv2's layout (patch 14, CLS token, layer scale, final layer norm) at 32 wide and 2 layers, with a
    # 224 px input: a 16 x 16 patch grid (so the top 1 % of patch scores is 2 patches), milliseconds on a CPU.
    "model": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "mlp_ratio": 4,
              "patch_size": 14, "image_size": 224},
    "resolution": 224,
}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="winclip-vit-b-16-plus-240",
            tool="anomaly",
            label="WinCLIP · ViT-B-16-plus-240 (LAION-400M, epoch 31)",
            architecture="ViT-B-16-plus-240",
            # open_clip keeps one hub copy of these weights, epoch 31: its e32 tag downloads the same repository
            pretrained="laion400m_e31",
            config={"hub_repo": "timm/vit_base_patch16_plus_clip_240.laion400m_e31"},
            method="winclip",
        ),
        Preset(
            name="winclip-tiny",
            tool="anomaly",
            label="WinCLIP · tiny (random weights: tests the plumbing, scores are meaningless)",
            architecture="winclip-tiny",
            config=_TINY_CLIP_CONFIG,
            method="winclip",
        ),
        Preset(
            name="musc-vit-l-14-336",
            tool="anomaly",
            label="MuSc · ViT-L-14-336 (OpenAI CLIP, 518 px)",
            architecture="ViT-L-14-336",
            pretrained="openai",
            config={"hub_repo": "timm/vit_large_patch14_clip_336.openai"},
            method="musc",
        ),
        Preset(
            name="musc-tiny",
            tool="anomaly",
            label="MuSc · tiny (random weights: tests the plumbing, scores are meaningless)",
            architecture="musc-tiny",
            config=_TINY_MUSC_CLIP_CONFIG,
            method="musc",
        ),
        Preset(
            name="anomalydino-dinov2-small",
            tool="anomaly",
            label="AnomalyDINO · DINOv2 ViT-S/14 (448 px, needs images of good parts)",
            architecture="dinov2-small",
            family="dinov2",
            pretrained="facebook/dinov2-small",
            config={"resolution": ANOMALYDINO_RESOLUTION},
            method="anomalydino",
        ),
        Preset(
            name="anomalydino-tiny",
            tool="anomaly",
            label="AnomalyDINO · tiny (random weights: tests the plumbing, scores are meaningless)",
            architecture="dinov2-tiny",
            family="dinov2",
            config=_TINY_DINOV2_CONFIG,
            method="anomalydino",
        ),
        Preset(
            name="insertion-sd15-controlnet-inpaint",
            tool="insertion",
            label="InVi · Stable Diffusion 1.5 + ControlNet inpaint (512 px)",
            architecture="sd15-controlnet-inpaint",
            family="sd-controlnet-inpaint",
            pretrained="stable-diffusion-v1-5/stable-diffusion-v1-5",
            config={"controlnet": "lllyasviel/control_v11p_sd15_inpaint"},
        ),
        Preset(
            name="insertion-tiny",
            tool="insertion",
            label="InVi · tiny (random weights: tests the plumbing, the inserted pixels are noise)",
            architecture="sd-controlnet-inpaint-tiny",
            family="sd-controlnet-inpaint",
            config=_TINY_INSERTION_CONFIG,
        ),
        Preset(
            name="completion-owlv2-base",
            tool="completion",
            label="OWLv2 · base patch16 ensemble (image-guided detection, 960 px)",
            architecture="owlv2-base-patch16-ensemble",
            family="owlv2",
            pretrained="google/owlv2-base-patch16-ensemble",
        ),
        Preset(
            name="completion-tiny",
            tool="completion",
            label="OWLv2 · tiny (random weights: tests the plumbing, proposals are meaningless)",
            architecture="owlv2-tiny",
            family="owlv2",
            config=_TINY_OWLV2_CONFIG,
        ),
        Preset(
            name="finetune-clip-vit-b-32",
            tool="finetune",
            label="CLIP · ViT-B-32 (LAION-2B, s34b b79k)",
            architecture="ViT-B-32",
            pretrained="laion2b_s34b_b79k",
            config={"hub_repo": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"},
        ),
        Preset(
            name="finetune-clip-tiny",
            tool="finetune",
            label="CLIP · tiny (random weights: tests the plumbing, zero-shot is chance)",
            architecture="finetune-clip-tiny",
            config=_TINY_FINETUNE_CLIP_CONFIG,
        ),
        Preset(
            name="detection-rtdetr-r18",
            tool="finetune-detect",
            label="RT-DETR · ResNet-18-vd (COCO, 640 px)",
            architecture="rtdetr_r18vd",
            family="rt_detr",
            pretrained="PekingU/rtdetr_r18vd",
            config={"learning_rate": 1e-4},
        ),
        Preset(
            name="detection-tiny",
            tool="finetune-detect",
            label="RT-DETR · tiny (random weights: learns simple shapes only, for tests and demos)",
            architecture="rtdetr-tiny",
            family="rt_detr",
            config=_TINY_RTDETR_CONFIG,
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


def demo_for(preset: Preset) -> Preset | None:
    """The demo preset (random weights, built here) to try a tool with while `preset`'s weights are missing: the
    one of its method, else the tool's first demo; None when the tool has none."""
    demos = [p for p in presets_for(preset.tool) if p.random_weights]
    return next((p for p in demos if p.method == preset.method), demos[0] if demos else None)
