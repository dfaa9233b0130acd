"""CLIP classifier for few-shot fine-tuning: open_clip image tower + a linear head from class-name text.

- The head starts as the normalised text embeddings of "a photo of a {class}.", so before any
  training the classifier is exactly zero-shot CLIP.
- LoRA (peft) adapters go on the MLP linears (`mlp.c_fc`, `mlp.c_proj`) of all or selected blocks
  of the image tower. open_clip's attention is `nn.MultiheadAttention`, which reads `out_proj`'s
  weight directly (a LoRA there would be bypassed) and whose peft wrapper merges into the fused
  `in_proj_weight` during forward; the MLP linears keep the base weights untouched.
- Selective LoRA (`LoraSettings(selective=True)`, `engine.finetune.classify.selective`): the same MLP
  adapters on every candidate block, each block's adapter outputs multiplied by a learned 0/1 gate; the
  saved model keeps only the active blocks' adapters, as plain LoRA on those blocks.
- WiSE-FT: `set_wise_alpha(a)` mixes head weights (1 - a) * zero-shot + a * fine-tuned and scales
  the LoRA update by a, so a = 0 is zero-shot and a = 1 the fine-tuned model, exactly.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import UserInputError
from engine.finetune.classify.selective import BlockGates
from engine.loading import MODEL_CACHE, load_open_clip
from engine.models.saved import read_meta, read_weights, write_model
from engine.presets import Preset, get_preset

PROMPT = "a photo of a {}."
_BLOCKS = re.compile(r"^(all|last:\d+|\d+(,\d+)*)$")
_BLOCK_OF = re.compile(r"resblocks\.(\d+)\.")


@dataclass(frozen=True)
class LoraSettings:
    """rank, and which image-tower blocks get adapters: "all", "last:N" or "0,3,5"; `selective`: those blocks
    are candidates whose adapters a learned gate turns on or off (Selective LoRA)."""

    rank: int = 8
    blocks: str = "all"
    selective: bool = False

    def block_indices(self, depth: int) -> list[int]:
        spec = self.blocks.replace(" ", "")
        if not _BLOCKS.match(spec):
            raise UserInputError(f"LoRA blocks {self.blocks!r} not understood: use all, last:N or indices like 0,3,5.")
        if spec == "all":
            return list(range(depth))
        if spec.startswith("last:"):
            count = int(spec[5:])
            if not 1 <= count <= depth:
                raise UserInputError(f"LoRA blocks last:{count}: the image tower has {depth} blocks.")
            return list(range(depth - count, depth))
        indices = sorted({int(i) for i in spec.split(",")})
        if indices[-1] >= depth:
            raise UserInputError(f"LoRA block {indices[-1]} does not exist: the image tower has blocks "
                                 f"0 to {depth - 1}.")
        return indices


def _block_of(parameter_name: str) -> int:
    return int(_BLOCK_OF.search(parameter_name).group(1))


def base_model(preset: Preset, device: torch.device) -> tuple[nn.Module, Any, dict[str, Any]]:
    """The preset's CLIP in float32 (training needs it), loaded once per process and never modified."""
    return MODEL_CACHE.get(("finetune-base", preset.name, str(device)),
                           lambda: load_open_clip(preset.name, device, torch.float32))


@torch.no_grad()
def text_head(model: nn.Module, tokenizer: Any, classes: list[str], device: torch.device) -> torch.Tensor:
    """Normalised text embeddings of the class prompts: the zero-shot classifier's weights."""
    tokens = tokenizer([PROMPT.format(name) for name in classes]).to(device)
    return F.normalize(model.encode_text(tokens).float(), dim=-1)


class CLIPClassifier(nn.Module):
    """Image tower (optionally with LoRA) + linear head; logits = scale * (normalised features @ W.T + b)."""

    def __init__(self, visual: nn.Module, zero_shot_head: torch.Tensor, logit_scale: float, classes: list[str],
                 lora: LoraSettings | None = None) -> None:
        super().__init__()
        self.visual = visual.requires_grad_(False)
        self.classes = list(classes)
        self.logit_scale = float(logit_scale)
        self.lora = lora
        self.register_buffer("zero_shot_head", zero_shot_head.detach().clone())
        self.head = nn.Linear(zero_shot_head.shape[1], zero_shot_head.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(zero_shot_head)
            self.head.bias.zero_()
        self.wise_alpha = 1.0
        self.gates: BlockGates | None = None
        if lora is not None:
            self._inject_lora(lora)

    def _inject_lora(self, lora: LoraSettings) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        indices = lora.block_indices(len(self.visual.transformer.resblocks))
        blocks = "|".join(str(i) for i in indices)
        config = LoraConfig(r=lora.rank, lora_alpha=lora.rank, lora_dropout=0.0, bias="none",
                            target_modules=rf"transformer\.resblocks\.({blocks})\.mlp\.(c_fc|c_proj)")
        inject_adapter_in_model(config, self.visual)
        for name, parameter in self.visual.named_parameters():
            parameter.requires_grad_("lora_" in name)
        if lora.selective:
            self.gates = BlockGates(indices)
            for name, module in self.visual.named_modules():
                if hasattr(module, "lora_B") and hasattr(module, "set_scale"):
                    slot = indices.index(_block_of(name))
                    module.lora_B["default"].register_forward_hook(
                        lambda _module, _inputs, output, slot=slot: output * self.gates.gate(slot))

    def kept_adapters(self) -> dict[str, torch.Tensor]:
        """The image tower's adapter weights a saved model keeps: all of them, or with Selective LoRA the
        active blocks' only."""
        active = set(self.gates.active()) if self.gates is not None else None
        return {name: p for name, p in self.visual.named_parameters()
                if "lora_" in name and (active is None or _block_of(name) in active)}

    def saved_lora(self) -> LoraSettings | None:
        """The LoRA settings of the saved model: Selective LoRA is saved as plain LoRA on its active blocks."""
        if self.gates is None:
            return self.lora
        active = self.gates.active()
        return LoraSettings(self.lora.rank, ",".join(str(b) for b in active)) if active else None

    def kept_parameters(self) -> int:
        """How many numbers fine-tuning changed and the saved model keeps: the head and the kept adapters."""
        return sum(p.numel() for p in (self.head.weight, self.head.bias, *self.kept_adapters().values()))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Copies of what training changes (head and adapters): a checkpoint, small enough to keep in memory."""
        return {name: p.detach().clone() for name, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        parameters = dict(self.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                parameters[name].copy_(value)

    def set_wise_alpha(self, alpha: float) -> None:
        """WiSE-FT mix between zero-shot (0) and fine-tuned (1) weights, for inference."""
        if not 0.0 <= alpha <= 1.0:
            raise UserInputError(f"The WiSE-FT mix must be between 0 (zero-shot) and 1 (fine-tuned), not {alpha}.")
        self.wise_alpha = float(alpha)
        for module in self.visual.modules():
            if hasattr(module, "set_scale") and hasattr(module, "lora_A"):
                module.set_scale("default", self.wise_alpha)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(pixels).float(), dim=-1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.features(pixels)
        if self.wise_alpha == 0.0:
            weight, bias = self.zero_shot_head, torch.zeros_like(self.head.bias)
        elif self.wise_alpha == 1.0:
            weight, bias = self.head.weight, self.head.bias
        else:
            alpha = self.wise_alpha
            weight = (1 - alpha) * self.zero_shot_head + alpha * self.head.weight
            bias = alpha * self.head.bias
        return self.logit_scale * (features @ weight.T + bias)


def build_classifier(preset_name: str, classes: list[str], device: torch.device,
                     lora: LoraSettings | None = None, seed: int = 0) -> tuple[CLIPClassifier, dict[str, Any]]:
    """A fresh classifier on a private copy of the preset's image tower, and its preprocess config.

    The adapters' random initialisation is seeded after the base model is loaded: loading draws random
    numbers, so the first run of a process would otherwise differ from the next ones with the same seed.
    """
    preset = get_preset(preset_name)
    if preset.tool != "finetune":
        raise UserInputError(f"Preset {preset_name!r} is not a fine-tuning preset.")
    model, tokenizer, preprocess = base_model(preset, device)
    head = text_head(model, tokenizer, classes, device)
    visual = copy.deepcopy(model.visual)
    torch.manual_seed(seed)
    classifier = CLIPClassifier(visual, head, float(model.logit_scale.exp()), classes, lora).to(device)
    return classifier, preprocess


def save_classifier(classifier: CLIPClassifier, directory: Path, meta: dict[str, Any]) -> Path:
    """Write the head, the zero-shot head and the kept adapters (not the backbone) plus model.json."""
    weights = {"head.weight": classifier.head.weight, "head.bias": classifier.head.bias,
               "zero_shot_head": classifier.zero_shot_head, **classifier.kept_adapters()}
    lora = classifier.saved_lora()
    return write_model(directory, weights, meta, "classify", classes=classifier.classes,
                       logit_scale=classifier.logit_scale, lora=asdict(lora) if lora else None)


def load_classifier(directory: Path, device: torch.device) -> tuple[CLIPClassifier, dict[str, Any], dict[str, Any]]:
    """(classifier, preprocess config, model.json) from a saved model and its base preset's weights."""
    meta = read_meta(directory, "classify")
    preset = get_preset(meta["base_preset"])
    model, _, preprocess = base_model(preset, device)
    lora = LoraSettings(**meta["lora"]) if meta.get("lora") else None
    weights = read_weights(directory, device)
    classifier = CLIPClassifier(copy.deepcopy(model.visual), weights["zero_shot_head"], meta["logit_scale"],
                                meta["classes"], lora).to(device)
    adapters = {k: v for k, v in weights.items() if "lora_" in k}
    expected = {n for n, _ in classifier.visual.named_parameters() if "lora_" in n}
    if set(adapters) != expected or weights["head.weight"].shape != classifier.head.weight.shape:
        raise UserInputError(f"{directory.name}: the weights do not fit base preset {preset.name} "
                             f"with these classes and LoRA settings.")
    classifier.load_trainable_state({"head.weight": weights["head.weight"], "head.bias": weights["head.bias"],
                                     **{f"visual.{k}": v for k, v in adapters.items()}})
    return classifier.eval(), preprocess, meta
