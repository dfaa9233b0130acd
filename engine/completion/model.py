"""OWLv2 as an exemplar-conditioned box proposer: the "owlv2" model family and a thin detector wrapper.

OWLv2 predicts one box per image patch, each with a class embedding. An annotated box becomes a
query by taking the class embedding of the detector's own predicted box that overlaps it best
(the query-embedding trick of OWL-ViT's image-guided detection, with the annotation instead of
the objectness maximum). Images are padded to a square at the bottom and right before resizing,
so normalised boxes are fractions of the longer side, not of width and height.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.completion.logic import iou_matrix
from engine.errors import UserInputError
from engine.loading import ModelFamily, not_a_model_dir, register_family, resolve_model_dir
from engine.presets import Preset, get_preset

WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def is_owlv2_dir(path: Path) -> bool:
    """A transformers OWLv2 directory: model config, weights, image-processor config and a tokenizer."""
    return ((path / "config.json").is_file() and any((path / name).is_file() for name in WEIGHTS_FILES)
            and any((path / name).is_file() for name in PROCESSOR_FILES)
            and (path / "tokenizer_config.json").is_file())


def tiny_tokenizer(max_length: int):
    """A CLIP tokenizer over lowercase letters and digits, built here (no hub): fits a ~99-token vocabulary.

    The end-of-text token has the highest id, as in CLIP: OWLv2 pools the text at argmax(input_ids).
    """
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0}
    for char in "abcdefghijklmnopqrstuvwxyz0123456789":
        vocab[char] = len(vocab)
        vocab[f"{char}</w>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def build_random_owlv2(config: dict[str, Any], seed: int = 0) -> tuple[torch.nn.Module, Any]:
    """(model, processor) from a config dict with seeded random weights; the processor is built locally."""
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    tokenizer = tiny_tokenizer(config["text_config"]["max_position_embeddings"])
    text_config = {**config["text_config"], "bos_token_id": 0, "eos_token_id": len(tokenizer) - 1,
                   "pad_token_id": len(tokenizer) - 1}
    owl_config = Owlv2Config(text_config=text_config, vision_config=config["vision_config"],
                             projection_dim=config["projection_dim"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Owlv2ForObjectDetection(owl_config).eval()
    with torch.no_grad():  # neutral heads: boxes = OWLv2's per-patch prior, score = sigmoid(cosine)
        for layer in (model.box_head.dense2, model.class_head.logit_shift, model.class_head.logit_scale):
            layer.weight.zero_()
            layer.bias.zero_()
    size = config["vision_config"]["image_size"]
    processor = Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": size, "width": size}),
                               tokenizer=tokenizer)
    return model, processor


def save_owlv2(model: torch.nn.Module, processor: Any, directory: Path) -> Path:
    """Write model and processor the way the hub stores them, so both load with from_pretrained(dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


register_family(ModelFamily(
    name="owlv2",
    is_complete=is_owlv2_dir,
    build_random=lambda preset, directory: save_owlv2(*build_random_owlv2(preset.config), directory),
    describe=lambda preset: f"transformers OWLv2, repository {preset.pretrained}",
))


@dataclass
class ImageFeatures:
    """What OWLv2 computes once per image; queries are scored against it without re-running the ViT.

    `boxes` are (N, 4) x0, y0, x1, y1 as fractions of `side` (the padded square, = the longer side).
    """

    feats: torch.Tensor  # (N, D_vision) patch features that the class head reads
    class_embeds: torch.Tensor  # (N, D_query) one query embedding per predicted box
    boxes: np.ndarray
    side: int


def to_pixels(boxes: np.ndarray, side: int) -> np.ndarray:
    """Normalised x0, y0, x1, y1 on OWLv2's padded square -> pixels of the original image."""
    return np.asarray(boxes, dtype=np.float64) * side


def to_normalized(boxes: np.ndarray, side: int) -> np.ndarray:
    """Pixels of the original image -> fractions of the padded square's side."""
    return np.asarray(boxes, dtype=np.float64) / side


def best_box_index(predicted: np.ndarray, target: np.ndarray) -> tuple[int, float]:
    """Index and IoU of the predicted box (x0, y0, x1, y1) that overlaps `target` best."""
    overlaps = iou_matrix(np.asarray(target, dtype=np.float64)[None], predicted)[0]
    index = int(np.argmax(overlaps))
    return index, float(overlaps[index])


class Owlv2Detector:
    """OWLv2 on one device: image features, exemplar and text queries, per-box scores."""

    def __init__(self, model: torch.nn.Module, processor: Any, name: str) -> None:
        self.model = model
        self.processor = processor
        self.name = name
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype

    @classmethod
    def from_pretrained(cls, source: str | Path, device: torch.device, dtype: torch.dtype) -> Owlv2Detector:
        """Load from a model directory or a preset name (both end in from_pretrained(directory))."""
        from transformers import Owlv2ForObjectDetection, Owlv2Processor
        from transformers.utils import logging as hf_logging

        path = Path(str(source)).expanduser()
        directory = path if path.is_dir() else resolve_model_dir(_owlv2_preset(str(source)))
        if not is_owlv2_dir(directory):
            raise not_a_model_dir(directory, "an OWLv2 model directory", f"config.json, {' or '.join(WEIGHTS_FILES)}, "
                                  "a processor config and a tokenizer")
        hf_logging.disable_progress_bar()
        model = Owlv2ForObjectDetection.from_pretrained(directory, local_files_only=True)
        model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
        processor = Owlv2Processor.from_pretrained(directory, local_files_only=True)
        return cls(model, processor, name=str(source))

    @property
    def input_size(self) -> int:
        return int(self.model.config.vision_config.image_size)

    def _shrink(self, image: Image.Image) -> Image.Image:
        """Reduce an image far larger than the input with a box filter first: the processor's Gaussian
        anti-aliasing then stays narrow (0.2 s -> 0.01 s for 640 px to the tiny preset's 64 px)."""
        factor = max(image.size) // (2 * self.input_size)
        if factor < 2:
            return image
        return image.resize((max(1, round(image.width / factor)), max(1, round(image.height / factor))), Image.BOX)

    @torch.inference_mode()
    def image_features(self, images: list[Image.Image]) -> list[ImageFeatures]:
        """One forward pass of the vision tower and the box and class heads for a batch of images."""
        small = [self._shrink(image) for image in images]
        pixels = self.processor.image_processor(small, return_tensors="pt")["pixel_values"]
        feature_map, _ = self.model.image_embedder(pixel_values=pixels.to(self.device, self.dtype))
        feats = feature_map.flatten(1, 2)
        _, class_embeds = self.model.class_predictor(feats)
        boxes = self.model.box_predictor(feats, feature_map).float()
        corners = torch.cat([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2], dim=-1)
        corners = corners.cpu().numpy().astype(np.float64)
        return [ImageFeatures(feats[i], class_embeds[i], corners[i], max(image.size))
                for i, image in enumerate(images)]

    def exemplar(self, features: ImageFeatures, box_xyxy: np.ndarray) -> tuple[torch.Tensor, int, float]:
        """Query embedding for an annotated box (pixels): the class embedding of the best-overlapping
        predicted box, with that box's index and IoU."""
        index, overlap = best_box_index(features.boxes, to_normalized(box_xyxy, features.side))
        return features.class_embeds[index], index, overlap

    @torch.inference_mode()
    def text_queries(self, names: list[str]) -> torch.Tensor:
        """(Q, D) text embeddings of class names ("a photo of a <name>"), OWLv2's text queries."""
        tokens = self.processor.tokenizer([f"a photo of a {n}" for n in names], padding="max_length",
                                          truncation=True, return_tensors="pt",
                                          max_length=self.model.config.text_config.max_position_embeddings)
        output = self.model.owlv2.get_text_features(input_ids=tokens["input_ids"].to(self.device),
                                                    attention_mask=tokens["attention_mask"].to(self.device))
        return output.pooler_output

    @torch.inference_mode()
    def scores(self, features: ImageFeatures, queries: torch.Tensor) -> np.ndarray:
        """(N boxes, Q queries) probabilities: OWLv2's class head (cosine + learnt shift and scale), sigmoid."""
        logits, _ = self.model.class_predictor(features.feats[None], queries[None].to(self.device, self.dtype))
        return torch.sigmoid(logits[0].float()).cpu().numpy().astype(np.float64)


def _owlv2_preset(name: str) -> Preset:
    preset = get_preset(name)
    if preset.family != "owlv2":
        raise UserInputError(f"Preset {name!r} is not an annotation-completion model; choose one of the "
                             "completion presets (completion-owlv2-base, completion-tiny).")
    return preset

