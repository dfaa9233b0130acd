"""The contract of insertion jobs (InVi): an object into one image, or into every frame of a short video.

Roles: "image" (one image) or "video" (one video); "mask" (drawn layers or mask images of the image
or the anchor frame, united) and, for region_mode "masks", "masks" (one mask per frame). Torch-free
at import: the web process checks parameters with it; `run` imports the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UserInputError
from engine.insertion.regions import parse_box, parse_keyframes, unmarked_region
from engine.limits import MAX_SEED
from engine.media import upright_size
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile, param
from engine.params import Params as BaseParams
from engine.params import Result as BaseResult
from engine.presets import get_preset, presets_for
from engine.progress import ProgressCallback, ignore_progress, sub_progress

NO_FRAME_MASKS = "Per-frame masks: upload one mask image per frame (sorted by file name)."


@dataclass(frozen=True)
class Params(BaseParams):
    """What to generate and how; every bad value is refused by name before a job is stored."""

    prompt: str = param("", "the object to insert (replace: the new object)", label="Prompt")
    negative_prompt: str = param("", "what the object should not look like", label="Negative prompt")
    mode: str = param("insert", "insert a new object, or replace the one under the (grown) mask",
                      choices=("insert", "replace"), label="Mode")
    seed: int = param(0, "seed of the initial noise; image variants use seed, seed+1, ...", ge=0, le=MAX_SEED,
                      label="Seed")
    variants: int = param(1, "image: one result per seed, to choose from", ge=1, le=16,
                          label="Results to choose from (seeds seed, seed+1, …)")
    steps: int = param(20, "denoising steps", ge=1, le=150, label="Denoising steps")
    guidance: float = param(7.5, "classifier-free guidance scale", ge=0, le=30, label="Guidance scale")
    strength: float = param(1.0, "how much of the region is repainted (above 0)", ge=0, le=1,
                            label="Strength (1 = repaint the region fully)")
    controlnet_scale: float = param(1.0, "weight of the inpainting ControlNet", ge=0, le=2, label="ControlNet weight")
    context: float = param(0.25, "margin around the region, as a fraction of its longer side", ge=0, le=2,
                           label="Context around the region")
    feather: int = param(6, "pixels of soft edge, inside the mask only", ge=0, le=64, label="Soft edge (pixels)")
    replace_grow: int = param(4, "replace: pixels the mask grows by to cover the old object's outline", ge=0, le=64,
                              label="Replace: mask growth (pixels)")
    box: tuple[float, ...] | None = param(None, "region x0,y0,x1,y1 in pixels, of the image or the anchor frame",
                                          ge=4, le=4, label="Box x0,y0,x1,y1 (pixels)")
    region_mode: str = param("same", "video: the anchor's region on every frame, boxes interpolated between "
                             "keyframes, or one uploaded mask per frame", choices=("same", "interpolate", "masks"),
                             label="Region on the other frames")
    keyframes: str | None = param(None, "video, region_mode interpolate: lines of 'frame: x0,y0,x1,y1'",
                                  label="Keyframe boxes, one per line: frame: x0,y0,x1,y1")
    anchor_frame: int = param(0, "the frame marked and generated first; the others follow its look", ge=0,
                              label="Anchor frame")
    extended_attention: bool = param(True, "video: frames attend to the anchor's keys and values (off: each "
                                     "frame independently)")
    chunk_size: int | None = param(None, "video: frames per denoising batch (default 4 on a GPU, 1 on a CPU)",
                                   ge=1, le=64, label="Frames per batch")
    preset: str = param(presets_for("insertion")[0].name, "the model", choices=tuple(
        p.name for p in presets_for("insertion")), label="Model")

    def check(self) -> None:
        # kept as the text encoder reads them (and as the summary reports them)
        object.__setattr__(self, "prompt", self.prompt.strip())
        object.__setattr__(self, "negative_prompt", self.negative_prompt.strip())
        if not self.prompt:
            raise UserInputError("The prompt is empty: describe the object to insert, e.g. 'a red vintage car'.")
        if self.strength <= 0:
            raise UserInputError(f"strength: a number above 0 and at most 1, not {self.strength}.")
        if int(self.steps * self.strength) < 1:
            raise UserInputError(f"{self.steps} steps at strength {self.strength} leave no denoising step; "
                                 "raise the steps or the strength.")
        if self.seed + self.variants - 1 > MAX_SEED:
            last = self.seed + self.variants - 1
            raise UserInputError(f"seed, variants: seeds {self.seed} to {last} go past {MAX_SEED:,} (2**32-1), the "
                                 "largest seed; choose a smaller seed or fewer variants.")

    def presets(self) -> tuple[str, ...]:
        return (self.preset,)

    def check_inputs(self, files: Mapping[str, Sequence[NamedFile]]) -> None:
        """A run that cannot succeed is refused at submit, not by a job that fails: not exactly one image or video;
        no region marked (no box and no drawn or uploaded mask; for a video, no mask per frame in region_mode
        "masks"); a box past the image (its size read from the file's header); for a video, whose frames only a
        job decodes, a box or keyframe that is no region of any frame, or interpolation without a keyframe."""
        check_one_source(len(files.get("image", ())), len(files.get("video", ())))
        marked = bool(files.get("mask")) or self.box is not None
        if files.get("image"):
            if not marked:
                raise unmarked_region("the image")
            if self.box is not None:
                name, path = files["image"][0]
                parse_box(self.box, upright_size(path, name))
            return
        if self.region_mode == "same" and not marked:
            raise unmarked_region(f"the anchor frame {self.anchor_frame}")
        if self.region_mode == "masks" and not files.get("masks"):
            raise UserInputError(NO_FRAME_MASKS)
        if self.box is not None and self.region_mode != "masks":
            parse_box(self.box, None)
        if self.region_mode == "interpolate":
            parse_keyframes(self.keyframes or "", None)


def check_one_source(images: int, videos: int) -> None:
    """An insertion goes into one image or one video: several, both or none are refused, saying what was given."""
    if images + videos == 1:
        return
    given = " and ".join(f"{count} {kind}{'s' if count > 1 else ''}"
                         for count, kind in ((images, "image"), (videos, "video")) if count) or "none"
    raise UserInputError(f"Upload one image or one video to insert the object into (given: {given}); insert into "
                         "each of several in its own run.")


@dataclass(frozen=True)
class Inputs(BaseInputs):
    image: list[NamedFile]
    video: list[NamedFile]
    mask: list[NamedFile]
    masks: list[NamedFile]


@dataclass
class Result(BaseResult):
    """What every insertion reports (the job's result and summary.json)."""

    prompt: str
    negative_prompt: str
    mode: str
    seed: int
    steps: int
    guidance: float
    strength: float
    preset: str
    random_weights: bool
    notes: list[str]
    kind: str
    file: str
    width: int
    height: int
    painted: bool  # a drawn or uploaded region marked pixels beyond the box: the box alone is another region


@dataclass
class ImageResult(Result):
    crop_box: list[int]
    images: list[dict[str, Any]]  # {"seed", "file"} per variant


@dataclass
class VideoResult(Result):
    fps: float
    frames: int
    anchor_frame: int
    region_mode: str
    extended_attention: bool
    audio: str | None


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress) -> Result:
    """Insert into the one image or video of `inputs`; writes the results and summary.json in `out_dir`."""
    from engine.insertion.pipeline import InsertionPipeline
    from engine.insertion.runs import run_image, run_video
    from engine.loading import get_pipeline

    preset = get_preset(params.preset)
    check_one_source(len(inputs.image), len(inputs.video))
    progress(0.01, f"Loading model {preset.label}")
    pipeline = get_pipeline(InsertionPipeline, preset.name)
    within = sub_progress(progress, 0.03, 0.98)
    if inputs.image:
        return run_image(pipeline, inputs.image[0], params, out_dir, inputs.mask, within)
    return run_video(pipeline, inputs.video[0], params, out_dir, inputs.mask, inputs.masks, within)
