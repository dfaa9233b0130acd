"""Few-shot fine-tuning speed and memory: seconds per training step and peak memory, LoRA and linear probe.

    python bench/finetune.py [--arch tiny|real|both] [--device cpu|cuda] [--steps N] [--batch B]

`real` is ViT-B-32 (the real preset's architecture) with random weights: speed needs no trained
weights. Each configuration runs in its own process so that its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(arch: str, method: str, device: str, steps: int, batch: int) -> dict:
    """Train `steps` steps on random pixels (after one warm-up step); peak RSS or CUDA memory."""
    import resource

    import open_clip
    import torch

    from engine.finetune.model import CLIPClassifier, LoraSettings
    from engine.finetune.train import TrainSettings, train
    from engine.loading import build_random_open_clip
    from engine.presets import get_preset

    config = get_preset("finetune-clip-tiny").config if arch == "tiny" else open_clip.get_model_config("ViT-B-32")
    model = build_random_open_clip(config)
    size = model.visual.image_size
    size = size[0] if isinstance(size, tuple) else size
    head = torch.nn.functional.normalize(torch.randn(4, config["embed_dim"]), dim=-1)
    lora = LoraSettings() if method == "lora" else None
    classifier = CLIPClassifier(model.visual, head, 100.0, ["a", "b", "c", "d"], lora).to(device)
    pixels, labels = torch.randn(batch, 3, size, size), [i % 4 for i in range(batch)]
    settings = TrainSettings(method=method, steps=1, batch_size=batch, augment=False)
    train(classifier, pixels, labels, pixels[:0], [], settings)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    train(classifier, pixels, labels, pixels[:0], [], TrainSettings(**{**settings.to_dict(), "steps": steps}))
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"arch": arch, "method": method, "device": device, "batch": batch, "image_size": size,
            "threads": torch.get_num_threads(), "s_per_step": round(seconds, 4), "peak_mib": round(peak, 1),
            "memory": "CUDA allocated" if device == "cuda" else "process RSS"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="both", choices=["tiny", "real", "both"])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present, else cpu)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        arch, method = args.one.split(":")
        print(json.dumps(measure(arch, method, args.device, args.steps, args.batch)))
        return
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    archs = ["tiny", "real"] if args.arch == "both" else [args.arch]
    print(f"{'arch':5} {'method':7} {'device':6} {'batch':>5} {'px':>4} {'s/step':>8} {'peak MiB':>9}")
    for arch in archs:
        for method in ("lora", "linear"):
            out = subprocess.run([sys.executable, __file__, "--one", f"{arch}:{method}", "--device", device,
                                  "--steps", str(args.steps), "--batch", str(args.batch)],
                                 cwd=REPO, capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONPATH": str(REPO)})
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['arch']:5} {r['method']:7} {r['device']:6} {r['batch']:>5} {r['image_size']:>4} "
                  f"{r['s_per_step']:>8.4f} {r['peak_mib']:>9.1f}  ({r['memory']}, {r['threads']} threads)")


if __name__ == "__main__":
    main()
