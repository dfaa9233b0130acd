"""Annotation completion speed and memory: images/s and peak memory, tiny preset and OWLv2-base at 960 x 960.

    python bench/completion.py [--arch tiny|real|both] [--device cpu|cuda] [--images N]

`real` is OWLv2 base patch16 (transformers' Owlv2Config defaults, 960 px input as in
google/owlv2-base-patch16-ensemble) with random weights: speed needs no trained weights. Each
configuration runs in its own process so that peak memory is its own. A run is the whole pipeline:
decode, preprocess, vision tower and heads, exemplar queries (3 boxes on the first image), scoring,
dedup and NMS.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import REPO, child_run, pick_device, run_isolated, sync

REAL_CONFIG = {"vision_config": {"image_size": 960, "patch_size": 16}, "text_config": {"max_position_embeddings": 16},
               "projection_dim": 512}


def run_one(arch: str, device: str, n_images: int, size: int) -> dict:
    """One configuration, in this process."""
    import resource
    import tempfile

    import torch
    from PIL import Image

    from engine.annotations.dataset import Box, Dataset, ImageRecord
    from engine.completion.model import Owlv2Detector, build_random_owlv2
    from engine.completion.pipeline import CompletionPipeline
    from engine.device import select_dtype
    from engine.presets import get_preset

    config = get_preset("completion-tiny").config if arch == "tiny" else REAL_CONFIG
    model, processor = build_random_owlv2(config)
    dtype = select_dtype(torch.device(device))
    pipeline = CompletionPipeline(Owlv2Detector(model.to(device=device, dtype=dtype), processor, arch))
    with tempfile.TemporaryDirectory() as tmp:
        images = []
        for index in range(n_images + 1):
            path = Path(tmp) / f"{index}.png"
            Image.effect_noise((size, size), 40 + index).convert("RGB").save(path)
            images.append(ImageRecord(path.name, size, size, path=path))
        images[0].boxes = [Box(10, 10, 40, 40, "part"), Box(200, 100, 60, 30, "part"), Box(400, 300, 50, 50, "hole")]
        warm = Dataset(images[:1], ["part", "hole"])
        pipeline(warm)  # warm-up: kernels, allocator
        dataset = Dataset([images[0], *images[2:]], ["part", "hole"])
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        sync(device)
        start = time.perf_counter()
        result = pipeline(dataset)
        sync(device)
        seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    vision = model.config.vision_config
    return {"arch": arch, "device": device, "input": vision.image_size, "boxes": (vision.image_size //
            vision.patch_size) ** 2, "images": len(dataset.images), "images_per_s": len(dataset.images) / seconds,
            "s_per_image": seconds / len(dataset.images), "peak_mib": peak,
            "proposals": len(result.all_proposals())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["tiny", "real", "both"], default="both")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--images", type=int, default=4, help="images per configuration")
    parser.add_argument("--size", type=int, default=960, help="side of the square test images")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if child_run(args.one, run_one):
        return
    device, name = pick_device(args.device)
    print(f"device {device} ({name}); {args.size} x {args.size} images")
    print(f"{'arch':5} {'input':>5} {'boxes':>6} {'images':>6} {'img/s':>8} {'s/img':>7} {'peak MiB':>9}")
    for arch in ["tiny", "real"] if args.arch == "both" else [args.arch]:
        config = {"arch": arch, "device": device, "n_images": args.images, "size": args.size}
        r = run_isolated(__file__, config)
        print(f"{arch:5} {r['input']:5d} {r['boxes']:6d} {r['images']:6d} {r['images_per_s']:8.2f} "
              f"{r['s_per_image']:7.3f} {r['peak_mib']:9.0f}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
