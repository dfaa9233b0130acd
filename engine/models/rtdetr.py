"""RT-DETR (transformers) as a few-shot detector: the "rt_detr" model family, a class head for the user's
classes, what training changes, saving that much, and a saved detector finding boxes. Fine-tuning trains it,
annotation completion proposes boxes with it: both import it from here.

- A base preset is a transformers directory (config.json, model.safetensors, preprocessor_config.json):
  `PekingU/rtdetr_r18vd` from the hub cache or the models directory, or the tiny preset built from
  its config with random weights, saved and loaded by path the same way.
- The class head (the decoder's per-layer class layers, the encoder's query-selection scores and the
  denoising class embedding) is replaced by one for the user's classes; a class whose name the base
  already knows (e.g. COCO's "person") starts from the base's row, the others from scratch.
- The backbone is frozen by default: few examples do not retrain it well, and the saved model is
  then only the rest (encoder, decoder, heads, their batch-norm statistics) on top of the base preset.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from engine.annotations.dataset import Box
from engine.device import select_device
from engine.errors import UserInputError
from engine.loading import MODEL_CACHE, ModelFamily, register_family, resolve_model_dir
from engine.models.saved import read_meta, read_weights, write_model
from engine.presets import Preset, get_preset

PROCESSOR_FILE = "preprocessor_config.json"
MODEL_FILES = ["config.json", "model.safetensors", PROCESSOR_FILE]
BACKBONE_PREFIX = "model.backbone."
MAX_DETECTIONS = 100  # per image, as COCO evaluates


def is_rtdetr_dir(path: Path) -> bool:
    """A transformers RT-DETR directory: config, weights and the image-processor config."""
    return all((path / name).is_file() for name in MODEL_FILES)


def build_random_rtdetr(config: dict[str, Any], seed: int = 0) -> nn.Module:
    """An RT-DETR from a preset config with seeded random weights.

    Batch-norm scales start at 1: transformers draws them from N(0, 0.02), which nearly silences the
    hybrid encoder of an untrained model, and the tiny preset then learns several times slower.
    """
    from transformers import RTDetrConfig, RTDetrForObjectDetection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RTDetrForObjectDetection(RTDetrConfig(**config["model"]))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.fill_(1.0)
    return model.eval()


def _save_random(preset: Preset, directory: Path) -> None:
    from transformers import RTDetrImageProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    build_random_rtdetr(preset.config).save_pretrained(directory)
    size = preset.config["image_size"]
    RTDetrImageProcessor(size={"height": size, "width": size}).save_pretrained(directory)


register_family(ModelFamily(
    name="rt_detr",
    is_complete=is_rtdetr_dir,
    build_random=_save_random,
    describe=lambda preset: f"transformers RT-DETR, hub repository {preset.pretrained}",
))


@dataclass(frozen=True)
class InputSpec:
    """How images become the model's input, as the base's image processor does it: resized to height x
    width (aspect not kept), scaled by `rescale`, normalised when mean and std are given."""

    height: int
    width: int
    rescale: float = 1 / 255
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @classmethod
    def read(cls, directory: Path) -> InputSpec:
        config = json.loads((directory / PROCESSOR_FILE).read_text())
        size = config.get("size") or {}
        normalise = config.get("do_normalize", False)
        return cls.from_dict({"height": size.get("height", 640), "width": size.get("width", 640),
                              "rescale": config.get("rescale_factor", 1 / 255) if config.get("do_rescale", True) else 1,
                              "mean": normalise and config["image_mean"], "std": normalise and config["image_std"]})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InputSpec:
        """From `asdict` of one (as saved in model.json): JSON has lists where the spec has tuples."""
        return cls(int(values["height"]), int(values["width"]), float(values["rescale"]),
                   *(tuple(values[k]) if values[k] else None for k in ("mean", "std")))

    def encode(self, images: Iterable[Image.Image]) -> torch.Tensor:
        """(N, 3, H, W) uint8: resized once and kept small; `pixels` makes the float input per batch."""
        arrays = [np.asarray(image.convert("RGB").resize((self.width, self.height), Image.Resampling.BILINEAR))
                  for image in images]
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    def pixels(self, encoded: torch.Tensor) -> torch.Tensor:
        pixels = encoded.float() * self.rescale
        if self.mean is not None and self.std is not None:
            pixels = (pixels - torch.tensor(self.mean).view(3, 1, 1)) / torch.tensor(self.std).view(3, 1, 1)
        return pixels


class Detector:
    """An RT-DETR with a head for `classes`, its input spec, and which weights training changes."""

    def __init__(self, model: nn.Module, classes: list[str], spec: InputSpec, base_preset: str,
                 train_backbone: bool = False) -> None:
        self.model = model
        self.classes = list(classes)
        self.spec = spec
        self.base_preset = base_preset
        self.train_backbone = train_backbone
        model.model.backbone.requires_grad_(train_backbone)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def trained(self, key: str) -> bool:
        return self.train_backbone or not key.startswith(BACKBONE_PREFIX)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Copies of the weights and statistics training changes: a checkpoint, and what is saved."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items() if self.trained(k)}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state, strict=False)

    def forward(self, encoded: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None):
        """The model's outputs for uint8 images (with the loss when `targets` are given)."""
        labels = None if targets is None else [{k: v.to(self.device) for k, v in t.items()} for t in targets]
        try:
            return self.model(pixel_values=self.spec.pixels(encoded).to(self.device), labels=labels)
        except ValueError as exc:  # transformers' loss refuses NaN boxes before any loss exists
            if "nan" not in str(exc):
                raise
            raise UserInputError("Training diverged: the detector's boxes became NaN (not a number). Lower the "
                                 "learning rate; no model was saved.") from None

    def boxes(self, outputs: Any, sizes: list[tuple[int, int]]) -> list[list[Box]]:
        """The best (query, class) pairs of each image as boxes in its own pixels, best first.

        RT-DETR's post-processing: sigmoid class scores, the top 100 over all queries and classes,
        centre boxes scaled to the image (width, height) and clipped to it.
        """
        scores = outputs.logits.float().sigmoid().cpu()
        centres = outputs.pred_boxes.float().cpu()
        count = len(self.classes)
        found = []
        for image_scores, image_boxes, (width, height) in zip(scores, centres, sizes, strict=True):
            top, index = image_scores.flatten().topk(min(MAX_DETECTIONS, image_scores.numel()))
            cx, cy, w, h = (image_boxes[index // count] * torch.tensor([width, height, width, height])).unbind(-1)
            x0, y0 = (cx - w / 2).clamp(0, width), (cy - h / 2).clamp(0, height)
            x1, y1 = (cx + w / 2).clamp(0, width), (cy + h / 2).clamp(0, height)
            found.append([Box(float(a), float(b), float(c - a), float(d - b), self.classes[k], float(s))
                          for a, b, c, d, k, s in zip(x0, y0, x1, y1, (index % count).tolist(), top.tolist(),
                                                      strict=True) if c > a and d > b])
        return found

    @torch.no_grad()
    def detect(self, encoded: torch.Tensor, sizes: list[tuple[int, int]], batch_size: int = 8) -> list[list[Box]]:
        self.model.eval()
        found = []
        for start in range(0, len(encoded), batch_size):
            outputs = self.forward(encoded[start:start + batch_size])
            found += self.boxes(outputs, sizes[start:start + batch_size])
        return found


def _base_model(preset: Preset, device: torch.device) -> tuple[nn.Module, InputSpec]:
    """The preset's RT-DETR in float32 (training needs it), loaded once per process and never modified."""
    from transformers import RTDetrForObjectDetection
    from transformers.utils import logging as hf_logging

    def load() -> tuple[nn.Module, InputSpec]:
        directory = resolve_model_dir(preset)
        hf_logging.disable_progress_bar()
        model = RTDetrForObjectDetection.from_pretrained(directory, local_files_only=True)
        return model.to(device=device, dtype=torch.float32).eval().requires_grad_(False), InputSpec.read(directory)

    return MODEL_CACHE.get(("detection-base", preset.name, str(device)), load)


def new_class_head(model: nn.Module, classes: list[str]) -> None:
    """Replace every class-dependent layer by one for `classes`; rows of classes the base knows are copied."""
    config = model.config
    known = {str(name).casefold(): int(index) for index, name in config.id2label.items()}
    rows = [(k, known[name.casefold()]) for k, name in enumerate(classes) if name.casefold() in known]
    count = len(classes)
    prior = config.initializer_bias_prior_prob or 1 / (count + 1)

    def linear(old: nn.Linear) -> nn.Linear:
        new = nn.Linear(old.in_features, count).to(old.weight.device)
        nn.init.xavier_uniform_(new.weight)
        nn.init.constant_(new.bias, -math.log((1 - prior) / prior))
        for k, j in rows:
            new.weight.data[k], new.bias.data[k] = old.weight.data[j], old.bias.data[j]
        return new

    decoder = model.model.decoder
    decoder.class_embed = nn.ModuleList(linear(layer) for layer in decoder.class_embed)
    model.model.enc_score_head = linear(model.model.enc_score_head)
    if config.num_denoising > 0:
        old = model.model.denoising_class_embed
        new = nn.Embedding(count + 1, old.embedding_dim, padding_idx=count).to(old.weight.device)
        nn.init.xavier_uniform_(new.weight)
        for k, j in [*rows, (count, old.num_embeddings - 1)]:
            new.weight.data[k] = old.weight.data[j]
        model.model.denoising_class_embed = new
    config.id2label = dict(enumerate(classes))
    config.label2id = {name: index for index, name in enumerate(classes)}


def build_detector(preset_name: str, classes: list[str], device: torch.device, train_backbone: bool = False,
                   seed: int = 0) -> Detector:
    """A fresh detector for `classes` on a private copy of the preset's model; the new head is seeded."""
    preset = get_preset(preset_name)
    if preset.tool != "finetune-detect":
        raise UserInputError(f"Preset {preset_name!r} is not a detection preset; choose one of: detection-rtdetr-r18, "
                             "detection-tiny.")
    base, spec = _base_model(preset, device)
    model = copy.deepcopy(base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new_class_head(model, classes)
    model.requires_grad_(True)
    return Detector(model, classes, spec, preset.name, train_backbone)


def save_detector(detector: Detector, directory: Path, meta: dict[str, Any]) -> Path:
    """Write what training changed (not the frozen backbone) and model.json."""
    return write_model(directory, detector.trainable_state(), meta, "detect", classes=detector.classes,
                       base_preset=detector.base_preset, train_backbone=detector.train_backbone,
                       input=asdict(detector.spec))


def load_detector(directory: Path, device: torch.device) -> tuple[Detector, dict[str, Any]]:
    """(detector, model.json) from a saved model and its base preset's weights."""
    meta = read_meta(directory, "detect")
    detector = build_detector(meta["base_preset"], meta["classes"], device, bool(meta.get("train_backbone")))
    weights = read_weights(directory, device)
    expected = {k: v.shape for k, v in detector.model.state_dict().items() if detector.trained(k)}
    if {k: v.shape for k, v in weights.items()} != expected:
        raise UserInputError(f"{directory.name}: the weights do not fit base preset {meta['base_preset']} with "
                             f"these classes.")
    detector.load_trainable_state(weights)
    detector.spec = InputSpec.from_dict(meta["input"])
    detector.model.eval()
    return detector, meta


class DetectionPredictor:
    """A saved detector loaded once, finding boxes on batches of images."""

    def __init__(self, model_dir: Path, device: str | None = None) -> None:
        self.detector, self.meta = load_detector(model_dir, select_device(device))

    @property
    def classes(self) -> list[str]:
        return self.detector.classes

    def __call__(self, images: Sequence[Image.Image], min_score: float = 0.0) -> list[list[Box]]:
        """Boxes of each image scoring at least `min_score`, best first, in the image's pixels."""
        found = self.detector.detect(self.detector.spec.encode(images), [image.size for image in images])
        return [[box for box in boxes if (box.score or 0.0) >= min_score] for boxes in found]
