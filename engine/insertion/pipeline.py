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

import numpy as np
import torch
from PIL import Image

from engine.device import select_device, select_dtype
from engine.errors import UserInputError
from engine.insertion.attention import AnchorStore, Mode, install
from engine.insertion.model import load_components, model_directory
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
from engine.limits import MAX_SEED, seed_problem
from engine.loading import MODEL_CACHE
from engine.progress import ProgressCallback, ignore_progress, sub_progress
from engine.video import batched

MODES = ("insert", "replace")
MAX_STEPS = 150


@dataclass
class InsertionSettings:
    """What to generate and how; `check()` turns bad values into messages a user can act on."""

    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 20
    guidance: float = 7.5
    strength: float = 1.0
    mode: str = "insert"  # "replace": the mask covers an old object; it is grown by `replace_grow` px
    controlnet_scale: float = 1.0
    context: float = 0.25  # margin around the region, as a fraction of its longer side
    feather: int = 6  # px of soft edge, inside the mask only
    replace_grow: int = 4

    def check(self) -> InsertionSettings:
        self.prompt, self.negative_prompt = (self.prompt or "").strip(), (self.negative_prompt or "").strip()
        if not self.prompt:
            raise UserInputError("The prompt is empty: describe the object to insert, e.g. 'a red vintage car'.")
        if self.mode not in MODES:
            raise UserInputError(f"Unknown mode {self.mode!r}; accepted: {', '.join(MODES)}.")
        checks = [
            (seed_problem(self.seed) is None, f"The {seed_problem(self.seed)}."),
            (isinstance(self.steps, int) and 1 <= self.steps <= MAX_STEPS,
             f"Steps must be 1 to {MAX_STEPS}, not {self.steps!r}."),
            (0.0 <= self.guidance <= 30.0, f"Guidance must be between 0 and 30, not {self.guidance}."),
            (0.0 < self.strength <= 1.0, f"Strength must be above 0 and at most 1, not {self.strength}."),
            (0.0 <= self.controlnet_scale <= 2.0, f"The ControlNet scale must be 0 to 2, not {self.controlnet_scale}."),
            (0.0 <= self.context <= 2.0, f"Context must be 0 to 2 (fraction of the region), not {self.context}."),
        ]
        for ok, message in checks:
            if not ok:
                raise UserInputError(message)
        if int(self.steps * self.strength) < 1:
            raise UserInputError(f"{self.steps} steps at strength {self.strength} leave no denoising step; "
                                 "raise the steps or the strength.")
        return self


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
    """Object insertion on one device. Load once (`from_pretrained` / `get_pipeline`), call many times."""

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
        from diffusers import StableDiffusionControlNetInpaintPipeline

        device = select_device(str(device) if device is not None else None)
        dtype = dtype or select_dtype(device)
        pipe = StableDiffusionControlNetInpaintPipeline(**load_components(model_directory(source), dtype))
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe.to(device), name=str(source))

    # -- checks -------------------------------------------------------------------------------
    def prompt_notes(self, settings: InsertionSettings) -> list[str]:
        """What the user should know about their prompts: the text encoder reads a bounded number of tokens."""
        tokenizer, notes = self.pipe.tokenizer, []
        limit = tokenizer.model_max_length
        for what, text in (("prompt", settings.prompt), ("negative prompt", settings.negative_prompt)):
            ids = tokenizer(text, truncation=False).input_ids
            if len(ids) > limit:
                kept = tokenizer.decode(ids[1 : limit - 1]).strip()
                notes.append(f"The {what} is {len(ids) - 2} tokens long and the text encoder reads {limit - 2}: "
                             f"it was cut after “…{kept[-40:]}”. Shorten it to use the rest.")
        return notes

    def region_mask(self, mask: np.ndarray, settings: InsertionSettings, what: str = "The mask") -> np.ndarray:
        """The mask as generated: checked, and grown in replace mode to cover the old object's outline."""
        check_mask(mask, what)
        if settings.mode == "replace":
            mask = grow(mask, settings.replace_grow)
            check_mask(mask, f"{what} (grown by {settings.replace_grow} px to cover the old object)")
        return mask

    def crop(self, image: Image.Image, mask: np.ndarray, settings: InsertionSettings,
             size: tuple[int, int] | None = None) -> Crop:
        """The model's inputs for one region; `size` fixes the model size (all frames of a video share one)."""
        box = context_box(bounding_box(mask), image.size, settings.context)
        return prepare_crop(image, mask, box, size or model_size(box, self.resolution, self.size_multiple))

    # -- generation ---------------------------------------------------------------------------
    def inpaint(self, crops: Sequence[Crop], settings: InsertionSettings, seeds: Sequence[int],
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
                    prompt=[settings.prompt] * len(crops), negative_prompt=[settings.negative_prompt] * len(crops),
                    image=[c.image for c in crops], mask_image=[c.mask for c in crops], control_image=control,
                    height=height, width=width, strength=settings.strength, num_inference_steps=settings.steps,
                    guidance_scale=settings.guidance, controlnet_conditioning_scale=settings.controlnet_scale,
                    generator=generators, output_type="np", callback_on_step_end=on_step,
                )
                recorded = self.store.entries if attention == "record" else {}
            finally:
                self.store.begin("off")
        return output.images, recorded

    def insert_image(self, image: Image.Image, mask: np.ndarray, settings: InsertionSettings, variants: int = 1,
                     progress: ProgressCallback = ignore_progress) -> ImageInsertion:
        """Insert into one image, once per seed (seed, seed + 1, ...): a choice of results."""
        settings.check()
        if not 1 <= variants <= 16:
            raise UserInputError(f"Variants must be 1 to 16, not {variants}.")
        if settings.seed + variants - 1 > MAX_SEED:
            raise UserInputError(f"Seeds {settings.seed} to {settings.seed + variants - 1} go past {MAX_SEED:,} "
                                 "(2**32-1), the largest seed; choose a smaller seed.")
        if mask.shape != (image.height, image.width):
            raise UserInputError(f"The mask is {mask.shape[1]} x {mask.shape[0]} pixels but the image is "
                                 f"{image.width} x {image.height}.")
        mask = self.region_mask(mask, settings)
        crop = self.crop(image, mask, settings)
        results = []
        for number, seed in enumerate(range(settings.seed, settings.seed + variants)):
            report = _prefixed(sub_progress(progress, number / variants, (number + 1) / variants),
                               f"Seed {seed} ({number + 1} of {variants})")
            generated, _ = self.inpaint([crop], settings, [seed], progress=report)
            results.append((seed, paste(image, _to_pil(generated[0]), crop.box, mask, settings.feather)))
        return ImageInsertion(results, mask, crop.box, self.prompt_notes(settings))

    def insert_video(self, anchor: FrameRegion, frames: Iterable[FrameRegion], settings: InsertionSettings,
                     total: int, chunk_size: int | None = None, extended_attention: bool = True,
                     progress: ProgressCallback = ignore_progress) -> Iterator[FrameRegion]:
        """Insert into every frame of `frames` (in order; the anchor's own index included), lazily.

        The anchor is generated first (recording its attention); then frames go through in chunks of
        `chunk_size`, so memory does not grow with the video's length. Yields each result frame with
        the mask used for it.
        """
        settings.check()
        chunk_size = chunk_size or (4 if self.device.type == "cuda" else 1)
        anchor_mask = self.region_mask(anchor.mask, settings, f"The mask of the anchor frame {anchor.index}")
        anchor_crop = self.crop(anchor.image, anchor_mask, settings)
        generated, recorded = self.inpaint(
            [anchor_crop], settings, [settings.seed], attention="record" if extended_attention else "off",
            progress=_prefixed(sub_progress(progress, 0, 1 / max(total, 1)), f"Anchor frame {anchor.index}"))
        anchor_result = paste(anchor.image, _to_pil(generated[0]), anchor_crop.box, anchor_mask, settings.feather)
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
                    mask = self.region_mask(frame.mask, settings, f"The mask of frame {frame.index}")
                    todo.append((frame, mask, self.crop(frame.image, mask, settings, size=anchor_crop.size)))
            if todo:
                first, last = todo[0][0].index, todo[-1][0].index
                label = f"Frame {first}" if first == last else f"Frames {first}-{last}"
                report = _prefixed(sub_progress(progress, done / total, (done + len(todo)) / total),
                                   f"{label} of {total}")
                images, _ = self.inpaint([c for _, _, c in todo], settings, [settings.seed] * len(todo),
                                         attention="extend" if extended_attention else "off", anchor=recorded,
                                         progress=report)
                for (frame, mask, crop), image in zip(todo, images, strict=True):
                    results[frame.index] = FrameRegion(frame.index, paste(frame.image, _to_pil(image), crop.box,
                                                                          mask, settings.feather), mask)
                done += len(todo)
            yield from (results[frame.index] for frame in chunk)


def _to_pil(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(array * 255), 0, 255).astype(np.uint8))


def _prefixed(callback: ProgressCallback, prefix: str) -> ProgressCallback:
    return lambda fraction, message: callback(fraction, f"{prefix} · {message}")


def get_pipeline(source: str | Path, device: str | None = None) -> InsertionPipeline:
    """The process-wide pipeline for a source and device: loaded on first use, then reused."""
    resolved = select_device(device)
    return MODEL_CACHE.get(("insertion", str(source), str(resolved)),
                           lambda: InsertionPipeline.from_pretrained(source, resolved))
