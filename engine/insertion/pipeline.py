"""InVi object insertion: ControlNet inpainting of a crop around the region, pasted back exactly.

Images: the region is cropped with context, inpainted at the model's resolution by diffusers'
`StableDiffusionControlNetInpaintPipeline` (one run per seed), and blended back inside the mask.
Videos: the anchor frame is inpainted first while every self-attention layer records its keys and
values per step; the other frames follow in chunks, each attending to those anchor keys and values
(extended attention), with the same initial noise, so the object keeps its look from frame to frame.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.device import select_device, select_dtype
from engine.errors import UserInputError
from engine.insertion.attention import AnchorStore, Mode, install
from engine.insertion.insert import Params
from engine.insertion.model import load_pipeline
from engine.insertion.regions import (
    Box,
    Crop,
    bounding_box,
    check_mask,
    context_box,
    grow,
    model_size,
    paste,
    prepare_crop,
)
from engine.progress import ProgressCallback, ignore_progress, sub_progress
from engine.video import batched


@dataclass
class ImageInsertion:
    """Results of one image: one image per seed, the mask that was used, and notes for the user."""

    images: list[tuple[int, Image.Image]]  # (seed, result)
    mask: np.ndarray
    crop_box: Box
    notes: list[str] = field(default_factory=list)


@dataclass
class FrameRegion:
    """A video frame and the region to fill in it (an empty mask leaves the frame as it is)."""

    index: int
    image: Image.Image
    mask: np.ndarray


class InsertionPipeline:
    """Object insertion on one device. Load once (`engine.loading.get_pipeline`), call many times."""

    def __init__(self, pipe, name: str) -> None:
        self.pipe = pipe
        self.name = name
        self.store = AnchorStore()
        self.extended_layers = install(pipe.unet, self.store)
        self.resolution = pipe.unet.config.sample_size * pipe.vae_scale_factor
        # the UNet halves the latents once per level but the last, and diffusers asks for multiples of 8
        self.size_multiple = math.lcm(8, pipe.vae_scale_factor * 2 ** (len(pipe.unet.config.block_out_channels) - 1))
        self.device = pipe.unet.device
        self._lock = threading.Lock()  # the scheduler and the anchor store are per-run state

    @classmethod
    def from_pretrained(cls, source: str | Path = "insertion-sd15-controlnet-inpaint",
                        device: torch.device | str | None = None,
                        dtype: torch.dtype | None = None) -> InsertionPipeline:
        """Load from a preset name or a model directory (unet/ vae/ text_encoder/ tokenizer/ scheduler/ controlnet/)."""
        device = select_device(str(device) if device is not None else None)
        dtype = dtype or select_dtype(device)
        pipe = load_pipeline(source, dtype)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe.to(device), name=str(source))

    # -- checks -------------------------------------------------------------------------------
    def prompt_notes(self, params: Params) -> list[str]:
        """What the user should know about their prompts: the text encoder reads a bounded number of tokens."""
        tokenizer, notes = self.pipe.tokenizer, []
        limit = tokenizer.model_max_length
        for what, text in (("prompt", params.prompt), ("negative prompt", params.negative_prompt)):
            ids = tokenizer(text, truncation=False).input_ids
            if len(ids) > limit:
                kept = _whole_characters(tokenizer, ids[1 : limit - 1])
                notes.append(f"The {what} is {len(ids) - 2} tokens long and the text encoder reads {limit - 2}: "
                             f"it was cut after “…{kept[-40:]}”. Shorten it to use the rest.")
        return notes

    def region_mask(self, mask: np.ndarray, params: Params, what: str = "The mask") -> np.ndarray:
        """The mask as generated: checked, and grown in replace mode to cover the old object's outline."""
        check_mask(mask, what)
        if params.mode == "replace":
            mask = grow(mask, params.replace_grow)
            check_mask(mask, f"{what} (grown by {params.replace_grow} px to cover the old object)")
        return mask

    def crop(self, image: Image.Image, mask: np.ndarray, params: Params,
             size: tuple[int, int] | None = None) -> Crop:
        """The model's inputs for one region; `size` fixes the model size (all frames of a video share one)."""
        box = context_box(bounding_box(mask), image.size, params.context)
        return prepare_crop(image, mask, box, size or model_size(box, self.resolution, self.size_multiple))

    # -- generation ---------------------------------------------------------------------------
    def inpaint(self, crops: Sequence[Crop], params: Params, seeds: Sequence[int],
                attention: Mode = "off", anchor: dict | None = None,
                progress: ProgressCallback = ignore_progress) -> tuple[np.ndarray, dict]:
        """Run diffusers' ControlNet inpaint pipeline on same-sized crops, one seed each.

        Returns the generated crops ((N, H, W, 3) float in [0, 1], at model size) and, with
        attention="record", the recorded anchor keys and values. `progress` is called after every
        denoising step and may raise to cancel.
        """
        width, height = crops[0].size
        control = torch.from_numpy(np.stack([c.control for c in crops])).permute(0, 3, 1, 2)
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]  # CPU noise: same on every device

        def on_step(pipe, index: int, timestep, tensors: dict) -> dict:
            self.store.next_step()
            progress((index + 1) / pipe.num_timesteps, f"step {index + 1} of {pipe.num_timesteps}")
            return tensors

        with self._lock, torch.inference_mode():
            self.store.begin(attention, anchor)
            try:
                output = self.pipe(
                    prompt=[params.prompt] * len(crops), negative_prompt=[params.negative_prompt] * len(crops),
                    image=[c.image for c in crops], mask_image=[c.mask for c in crops], control_image=control,
                    height=height, width=width, strength=params.strength, num_inference_steps=params.steps,
                    guidance_scale=params.guidance, controlnet_conditioning_scale=params.controlnet_scale,
                    generator=generators, output_type="np", callback_on_step_end=on_step,
                )
                recorded = self.store.entries if attention == "record" else {}
            finally:
                self.store.begin("off")
        return output.images, recorded

    def insert_image(self, image: Image.Image, mask: np.ndarray, params: Params,
                     progress: ProgressCallback = ignore_progress) -> ImageInsertion:
        """Insert into one image, once per seed (seed, seed + 1, ...): a choice of results."""
        if mask.shape != (image.height, image.width):
            raise UserInputError(f"The mask is {mask.shape[1]} x {mask.shape[0]} pixels but the image is "
                                 f"{image.width} x {image.height}.")
        mask = self.region_mask(mask, params)
        crop = self.crop(image, mask, params)
        variants = params.variants
        results = []
        for number, seed in enumerate(range(params.seed, params.seed + variants)):
            report = _prefixed(sub_progress(progress, number / variants, (number + 1) / variants),
                               f"Seed {seed} ({number + 1} of {variants})")
            generated, _ = self.inpaint([crop], params, [seed], progress=report)
            results.append((seed, paste(image, _to_pil(generated[0]), crop.box, mask, params.feather)))
        return ImageInsertion(results, mask, crop.box, self.prompt_notes(params))

    def insert_video(self, anchor: FrameRegion, frames: Iterable[FrameRegion], params: Params,
                     total: int, progress: ProgressCallback = ignore_progress) -> Iterator[FrameRegion]:
        """Insert into every frame of `frames` (in order; the anchor's own index included), lazily.

        The anchor is generated first (recording its attention); then frames go through in chunks of
        `chunk_size`, so memory does not grow with the video's length. Yields each result frame with
        the mask used for it.
        """
        chunk_size = params.chunk_size or (4 if self.device.type == "cuda" else 1)
        anchor_mask = self.region_mask(anchor.mask, params, f"The mask of the anchor frame {anchor.index}")
        anchor_crop = self.crop(anchor.image, anchor_mask, params)
        generated, recorded = self.inpaint(
            [anchor_crop], params, [params.seed], attention="record" if params.extended_attention else "off",
            progress=_prefixed(sub_progress(progress, 0, 1 / max(total, 1)), f"Anchor frame {anchor.index}"))
        anchor_result = paste(anchor.image, _to_pil(generated[0]), anchor_crop.box, anchor_mask, params.feather)
        done = 1
        for chunk in batched(frames, chunk_size):
            results: dict[int, FrameRegion] = {}
            todo: list[tuple[FrameRegion, np.ndarray, Crop]] = []
            for frame in chunk:
                if frame.index == anchor.index:
                    results[frame.index] = FrameRegion(frame.index, anchor_result, anchor_mask)
                elif not frame.mask.any():  # the region left the picture: the frame stays as it is
                    results[frame.index] = frame
                else:
                    mask = self.region_mask(frame.mask, params, f"The mask of frame {frame.index}")
                    todo.append((frame, mask, self.crop(frame.image, mask, params, size=anchor_crop.size)))
            if todo:
                first, last = todo[0][0].index, todo[-1][0].index
                label = f"Frame {first}" if first == last else f"Frames {first}-{last}"
                report = _prefixed(sub_progress(progress, done / total, (done + len(todo)) / total),
                                   f"{label} of {total}")
                images, _ = self.inpaint([c for _, _, c in todo], params, [params.seed] * len(todo),
                                         attention="extend" if params.extended_attention else "off", anchor=recorded,
                                         progress=report)
                for (frame, mask, crop), image in zip(todo, images, strict=True):
                    results[frame.index] = FrameRegion(frame.index, paste(frame.image, _to_pil(image), crop.box,
                                                                          mask, params.feather), mask)
                done += len(todo)
            yield from (results[frame.index] for frame in chunk)


def _to_pil(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(array * 255), 0, 255).astype(np.uint8))


def _prefixed(callback: ProgressCallback, prefix: str) -> ProgressCallback:
    return lambda fraction, message: callback(fraction, f"{prefix} · {message}")



def _whole_characters(tokenizer: Any, ids: Sequence[int]) -> str:
    """The text of `ids`, ended before a character they hold only part of: CLIP's tokens are bytes of UTF-8, so a
    prompt cut at the token limit can stop inside an emoji or an accented letter, which decodes as "�"."""
    end = len(ids)
    while end and tokenizer.decode(ids[:end]).endswith("\ufffd"):
        end -= 1
    return tokenizer.decode(ids[:end]).strip()
