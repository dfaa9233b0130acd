"""Anomaly methods' speed and memory: images/s and peak memory per method and precision; WinCLIP zero-shot and
WinCLIP+ at batch sizes 1 and 8.

    python bench/anomaly.py [--arch tiny|real|both] [--device cpu|cuda] [--images N] [--methods-only]

Per method (WinCLIP zero-shot, MuSc over a set of N images, AnomalyDINO with one good part) and precision
(fp32, and bf16 on a CPU or fp16 on a GPU): images/s, peak memory, and the largest difference of the maps and
scores from fp32's on the same images (the rule for bf16 by default: maps within 1e-2).

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


METHOD_ARCHITECTURES = {  # the papers' backbones, built with random weights (speed needs no trained weights)
    "winclip": ("winclip-tiny", "ViT-B-16-plus-240"),
    "musc": ("musc-tiny", "ViT-L-14-336"),
    "anomalydino": ("anomalydino-tiny", "dinov2-small"),
}


def method_scorer(method: str, arch: str, device: str, dtype, folder: Path):
    """The method's scorer on a random-weight model of the tiny preset or of the paper's architecture."""
    import torch

    from engine.anomaly.scorers import SCORERS, pipeline_class
    from engine.loading import build_random_open_clip, load_open_clip, save_open_clip

    tiny, real = METHOD_ARCHITECTURES[method]
    pipeline_type = pipeline_class(SCORERS[method].method)
    if arch == "tiny":
        return SCORERS[method](pipeline_type.from_pretrained(tiny, device=device, dtype=dtype))
    if method == "anomalydino":
        from transformers import Dinov2Config, Dinov2Model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            Dinov2Model(Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, patch_size=14,
                                     image_size=518)).save_pretrained(folder)
        return SCORERS[method](pipeline_type.from_pretrained(str(folder), device=device, dtype=dtype))
    import open_clip

    config = open_clip.get_model_config(real)
    save_open_clip(build_random_open_clip(config), config, folder)
    if method == "musc":  # the paper's layers and 518 px input, which a bare folder does not name
        from engine.anomaly.musc import SETTINGS, MuscPipeline

        clip, _, preprocess = load_open_clip(str(folder), torch.device(device), dtype)
        return SCORERS[method](MuscPipeline(clip, preprocess["mean"], preprocess["std"], SETTINGS[real], real))
    return SCORERS[method](pipeline_type.from_pretrained(str(folder), device=device, dtype=dtype))


def run_method(method: str, arch: str, device: str, precision: str, n_images: int, maps_file: str) -> dict:
    """One method at one precision, in this process; the fp32 run saves its maps for the others to compare."""
    import resource

    import numpy as np
    import torch
    from PIL import Image

    from engine.anomaly.common import AnomalyParams

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    with tempfile.TemporaryDirectory() as tmp:
        scorer = method_scorer(method, arch, device, dtype, Path(tmp))
    images = [Image.effect_noise((320, 240), 60 + i).convert("RGB") for i in range(n_images)]
    references = [Image.effect_noise((320, 240), 40).convert("RGB")] if method == "anomalydino" else []
    scorer.prepare(AnomalyParams(method=method, object_name="metal plate"), references)
    if method != "musc":
        scorer.score(images[:1])  # warm-up (MuSc's set is the whole batch: its one run is timed)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    start = time.perf_counter()
    results = scorer.score(images)
    sync(device)
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    maps = np.stack([r.anomaly_map for r in results]).astype(np.float32)
    scores = np.array([r.score for r in results], np.float32)
    found = {"images_per_s": n_images / seconds, "peak_mib": peak, "map_diff": None, "score_diff": None}
    if precision == "fp32":
        np.savez(maps_file, maps=maps, scores=scores)
    elif Path(maps_file).is_file():
        reference = np.load(maps_file)
        found["map_diff"] = float(np.abs(maps - reference["maps"]).max())
        found["score_diff"] = float(np.abs(scores - reference["scores"]).max())
    return found


def print_methods(arches: list[str], device: str, n_images: int, methods: list[str]) -> None:
    from engine.device import cpu_has_native_bf16

    low = "fp16" if device.startswith("cuda") else "bf16"
    native = "native" if device.startswith("cuda") or cpu_has_native_bf16() else "emulated: no AVX512-BF16 or AMX"
    print(f"\nper method, {n_images} images of 320 x 240 (MuSc: one set of them; AnomalyDINO: 1 good part); "
          f"{low} is {native}")
    print(f"{'method':12} {'arch':18} {'precision':9} {'img/s':>8} {'peak MiB':>9} {'max map diff':>12} "
          f"{'max score diff':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in arches:
            for method in methods:
                names = METHOD_ARCHITECTURES[method]
                maps_file = str(Path(tmp) / f"{method}-{arch}.npz")
                for precision in ("fp32", low):
                    config = {"method": method, "arch": arch, "device": device, "precision": precision,
                              "n_images": n_images, "maps_file": maps_file}
                    r = run_isolated(__file__, {"method_run": config})
                    diffs = ("" if r["map_diff"] is None
                             else f"{r['map_diff']:12.2e} {r['score_diff']:14.2e}")
                    print(f"{method:12} {names[arch == 'real']:18} {precision:9} {r['images_per_s']:8.3f} "
                          f"{r['peak_mib']:9.0f} {diffs}", flush=True)


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
    parser.add_argument("--methods-only", action="store_true", help="only the per-method, per-precision table")
    parser.add_argument("--methods", default=",".join(METHOD_ARCHITECTURES), help="methods of that table")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--text", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.text:
        print(json.dumps(run_text("real", args.text)))
        return
    if child_run(args.one, lambda method_run=None, **config: run_method(**method_run) if method_run
                 else run_one(**config)):
        return
    device, name = pick_device(args.device)
    gflops = matmul_gflops(device)
    print(f"device {device} ({name})")
    print(f"fp32 matmul throughput (2048^3): {gflops:.0f} GFLOP/s")
    arches = ["tiny", "real"] if args.arch == "both" else [args.arch]
    if args.methods_only:
        print_methods(arches, device, args.images, args.methods.split(","))
        return
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
    for arch in arches:
        for shots in (0, 1):
            for batch in (1, 8):
                config = {"arch": arch, "device": device, "batch": batch, "shots": shots, "n_images": args.images}
                r = run_isolated(__file__, config)
                share = r["gflop_per_image"] * r["images_per_s"] / gflops
                print(f"{arch:5} {batch:5d} {shots:5d} {r['images_per_s']:8.2f} {r['s_per_image']:7.3f} "
                      f"{r['peak_mib']:9.0f} {r['gflop_per_image']:9.1f} {share:11.0%}", flush=True)
    print_methods(arches, device, args.images, args.methods.split(","))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
