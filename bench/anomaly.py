"""WinCLIP speed and memory: images/s and peak memory, zero-shot and WinCLIP+, batch sizes 1 and 8.

    python bench/anomaly.py [--arch tiny|real|both] [--device cpu|cuda] [--images N]

`real` is the paper's ViT-B-16-plus-240 with random weights (speed needs no trained weights).
Also prints this machine's fp32 matrix-multiply throughput and the share of it the window pass
reaches (FLOPs of the whole-image pass plus the 365 window passes, divided by time). Each
configuration runs in its own process so that peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, child_run, pick_device, run_isolated, sync


def matmul_gflops(device: str, size: int = 2048, repeats: int = 10) -> float:
    import torch

    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def pass_flops(model) -> float:
    """Matrix-multiply FLOPs of one image: the whole-image pass and every window pass."""
    visual = model.clip.visual
    width, layers = visual.transformer.width, len(visual.transformer.resblocks)
    rows, cols = model.grid
    sequences = [(1, 1 + rows * cols)] + [(model.windows(s).shape[0], 1 + s * s) for s in model.scales]
    flops = 0.0
    for count, length in sequences:
        linear = 24 * width * width * length  # qkv, out, 4x MLP: 12 W^2 multiply-adds per token
        attention = 4 * length * length * width
        flops += count * layers * (linear + attention)
    flops += 2 * 3 * visual.patch_size[0] * visual.patch_size[1] * width * rows * cols  # patch embedding
    return flops


def run_one(arch: str, device: str, batch: int, shots: int, n_images: int) -> dict:
    """One configuration, in this process."""
    import resource

    import torch
    from PIL import Image

    from engine.anomaly.pipeline import WinClipPipeline
    from engine.loading import build_random_open_clip, save_open_clip
    from engine.presets import get_preset

    if arch == "tiny":
        config = get_preset("winclip-tiny").config
    else:
        import open_clip

        config = open_clip.get_model_config("ViT-B-16-plus-240")
    with tempfile.TemporaryDirectory() as tmp:
        save_open_clip(build_random_open_clip(config), config, Path(tmp))
        pipeline = WinClipPipeline.from_pretrained(tmp, device=device)
    images = [Image.effect_noise((320, 240), 60 + i).convert("RGB") for i in range(n_images)]
    references = [Image.effect_noise((320, 240), 40 + i).convert("RGB") for i in range(shots)] or None
    memory = pipeline.reference_memory(references) if references else None
    pipeline.text_embeddings("metal plate")
    pipeline(images[:batch], "metal plate", references=memory, batch_size=batch)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    start = time.perf_counter()
    pipeline(images, "metal plate", references=memory, batch_size=batch)
    sync(device)
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"arch": arch, "device": device, "batch": batch, "shots": shots, "images_per_s": n_images / seconds,
            "s_per_image": seconds / n_images, "peak_mib": peak, "gflop_per_image": pass_flops(pipeline.model) / 1e9}


def run_text(arch: str, device: str) -> dict:
    """Seconds of text encoding for a new object name: first in the process, then warm, then from the
    disk cache after a restart; and CLIP's plain 77-token encode of the same prompts, for scale."""
    import os

    import open_clip
    import torch
    import torch.nn.functional as F

    from engine.anomaly.pipeline import WinClipPipeline
    from engine.anomaly.prompts import prompt_ensemble
    from engine.loading import build_random_open_clip, save_open_clip

    config = open_clip.get_model_config("ViT-B-16-plus-240")
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as cache:
        os.environ["FEWSHOT_CACHE_DIR"] = cache
        save_open_clip(build_random_open_clip(config), config, Path(tmp))
        pipeline = WinClipPipeline.from_pretrained(tmp, device=device)
        timings = {}
        for label, name in (("first", "metal plate"), ("new", "bottle cap"), ("new2", "printed circuit board")):
            sync(device)
            start = time.perf_counter()
            pipeline.text_embeddings(name)
            sync(device)
            timings[label] = time.perf_counter() - start
        restarted = WinClipPipeline.from_pretrained(tmp, device=device)
        start = time.perf_counter()
        restarted.text_embeddings("bottle cap")
        timings["disk"] = time.perf_counter() - start
        prompts = [p for group in prompt_ensemble("bottle cap") for p in group]
        model = pipeline.model
        with torch.inference_mode():
            start = time.perf_counter()
            full = model.clip.encode_text(model.tokenizer(prompts).to(pipeline.device))
            sync(device)
            timings["full_context"] = time.perf_counter() - start
            shared = model.encode_text(prompts)
        timings["max_cosine_gap"] = float(1 - F.cosine_similarity(full.float(), shared.float()).min())
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["tiny", "real", "both"], default="both")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--images", type=int, default=8, help="images per configuration")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--text", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.text:
        print(json.dumps(run_text("real", args.text)))
        return
    if child_run(args.one, run_one):
        return
    device, name = pick_device(args.device)
    gflops = matmul_gflops(device)
    print(f"device {device} ({name})")
    print(f"fp32 matmul throughput (2048^3): {gflops:.0f} GFLOP/s")
    if args.arch != "tiny":
        done = subprocess.run([sys.executable, __file__, "--text", device], cwd=REPO, capture_output=True, text=True,
                              check=True)
        t = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"text encoding, ViT-B-16-plus-240, 231 prompts: first name {t['first']:.2f} s (includes warm-up), "
              f"new names {t['new']:.2f} s and {t['new2']:.2f} s, after a restart from the disk cache "
              f"{t['disk']:.3f} s; CLIP's 77-token encode {t['full_context']:.2f} s "
              f"(largest cosine gap to it {t['max_cosine_gap']:.1e})")
    print(f"{'arch':5} {'batch':>5} {'shots':>5} {'img/s':>8} {'s/img':>7} {'peak MiB':>9} {'GFLOP/img':>9} "
          f"{'% of matmul':>11}")
    arches = ["tiny", "real"] if args.arch == "both" else [args.arch]
    for arch in arches:
        for shots in (0, 1):
            for batch in (1, 8):
                config = {"arch": arch, "device": device, "batch": batch, "shots": shots, "n_images": args.images}
                r = run_isolated(__file__, config)
                share = r["gflop_per_image"] * r["images_per_s"] / gflops
                print(f"{arch:5} {batch:5d} {shots:5d} {r['images_per_s']:8.2f} {r['s_per_image']:7.3f} "
                      f"{r['peak_mib']:9.0f} {r['gflop_per_image']:9.1f} {share:11.0%}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
