"""InVi insertion speed and memory: seconds per frame and peak memory, image and video.

    python bench/insertion.py [--arch tiny|sd15|both] [--device cpu|cuda] [--steps N] [--frames N]

`tiny` is the insertion-tiny preset (32 px crops). `sd15` is a Stable Diffusion 1.5-sized UNet,
ControlNet, VAE and text encoder with random weights (speed needs no trained weights) on 512 x 512
crops. On a GPU both run image and video; on a CPU, sd15 runs the image case with a single
denoising step (one step there takes tens of seconds), and says so. Video seconds per frame count
the anchor frame and every following frame (extended attention on); "anchor MiB" is the memory of
the anchor's recorded keys and values. Each configuration runs in its own process so that peak
memory is its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from common import REPO, child_run, pick_device, run_isolated, sync

SD15 = {  # Stable Diffusion 1.5's component sizes (its configs on the hub), built here with random weights
    "unet": {"sample_size": 64, "in_channels": 4, "out_channels": 4, "cross_attention_dim": 768,
             "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2, "attention_head_dim": 8},
    "controlnet": {"in_channels": 4, "cross_attention_dim": 768, "block_out_channels": [320, 640, 1280, 1280],
                   "layers_per_block": 2, "attention_head_dim": 8},
    "vae": {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": [128, 256, 512, 512],
            "layers_per_block": 2, "sample_size": 512, "down_block_types": ["DownEncoderBlock2D"] * 4,
            "up_block_types": ["UpDecoderBlock2D"] * 4},
    "text_encoder": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
                     "num_hidden_layers": 12, "vocab_size": 49408, "max_position_embeddings": 77},
}


def build_sd15(device: str):
    """An InsertionPipeline of SD 1.5 size with random weights, built in memory on `device` (no 5 GB save)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        DDIMScheduler,
        StableDiffusionControlNetInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from engine.device import select_dtype
    from engine.insertion.model import build_tokenizer
    from engine.insertion.pipeline import InsertionPipeline

    dtype = select_dtype(torch.device(device))
    tokenizer = build_tokenizer()
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    with torch.device(device):
        pipe = StableDiffusionControlNetInpaintPipeline(
            vae=AutoencoderKL(**SD15["vae"]), unet=UNet2DConditionModel(**SD15["unet"]),
            controlnet=ControlNetModel(**SD15["controlnet"]), tokenizer=tokenizer,
            text_encoder=CLIPTextModel(CLIPTextConfig(**SD15["text_encoder"], **special)),
            scheduler=DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                    clip_sample=False, set_alpha_to_one=False, steps_offset=1),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return InsertionPipeline(pipe if dtype == torch.float32 else pipe.to(dtype=dtype), name="sd15-random")


def run_one(arch: str, device: str, kind: str, steps: int, frames: int) -> dict:
    """One configuration, in this process: seconds per frame and peak memory."""
    import resource

    import numpy as np
    import torch
    from PIL import Image

    from engine.insertion.insert import Params
    from engine.insertion.pipeline import FrameRegion, InsertionPipeline
    from engine.insertion.regions import mask_from_box

    pipeline = InsertionPipeline.from_pretrained("insertion-tiny", device) if arch == "tiny" else build_sd15(device)
    size = (640, 480) if arch == "sd15" else (160, 120)
    box = (size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4)
    settings = Params(prompt="a red vintage car", steps=steps, seed=1)
    images = [Image.effect_noise(size, 40 + i).convert("RGB") for i in range(frames)]
    mask = mask_from_box(box, size)
    regions = [FrameRegion(i, image, mask) for i, image in enumerate(images)]
    pipeline.insert_image(images[0], mask, Params(prompt="warm up", steps=1))  # allocations, kernels
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    start = time.perf_counter()
    if kind == "image":
        pipeline.insert_image(images[0], mask, settings)
        count = 1
    else:
        results = list(pipeline.insert_video(regions[0], regions, settings, total=frames))
        count = len(results)
        assert all(np.asarray(r.image).shape == (size[1], size[0], 3) for r in results)
    sync(device)
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    anchor_mib = 0.0
    if kind == "video":
        _, anchor = pipeline.inpaint([pipeline.crop(images[0], mask, settings)], settings, [1], attention="record")
        anchor_mib = sum(k.nbytes + v.nbytes for k, v in anchor.values()) / 2**20
    return {"arch": arch, "kind": kind, "steps": steps, "frames": count, "s_per_frame": seconds / count,
            "peak_mib": peak, "anchor_mib": anchor_mib, "crop": list(pipeline.crop(images[0], mask, settings).size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["tiny", "sd15", "both"], default="both")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--frames", type=int, default=8, help="frames of the video case (sd15 on GPU: at most 4)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if child_run(args.one, run_one):
        return
    device, name = pick_device(args.device)
    print(f"device {device} ({name})")
    print(f"{'arch':5} {'kind':6} {'crop':>9} {'steps':>5} {'frames':>6} {'s/frame':>8} {'peak MiB':>9} "
          f"{'anchor MiB':>10}")
    plans = []
    if args.arch in ("tiny", "both"):
        plans += [("tiny", "image", args.steps, 1), ("tiny", "video", args.steps, args.frames)]
    if args.arch in ("sd15", "both"):
        if device.startswith("cuda"):
            plans += [("sd15", "image", args.steps, 1), ("sd15", "video", args.steps, min(args.frames, 4))]
        else:
            plans += [("sd15", "image", 1, 1)]
            print("(sd15 on CPU: the image case with one denoising step only)")
    with tempfile.TemporaryDirectory() as models:
        for arch, kind, steps, frames in plans:
            config = {"arch": arch, "device": device, "kind": kind, "steps": steps, "frames": frames}
            r = run_isolated(__file__, config, env={**os.environ, "FEWSHOT_MODELS_DIR": models})
            crop = "x".join(map(str, r["crop"]))
            print(f"{arch:5} {kind:6} {crop:>9} {r['steps']:5d} {r['frames']:6d} {r['s_per_frame']:8.2f} "
                  f"{r['peak_mib']:9.0f} {r['anchor_mib']:10.1f}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
