"""Few-shot fine-tuning speed and memory: seconds per training step and peak memory.

    python bench/finetune.py [--task classify|detect|both] [--arch tiny|real|both] [--device cpu|cuda]
                             [--steps N] [--batch B]

classify: CLIP with Selective LoRA (candidates on every block, default sparsity), LoRA on every block and as a
linear probe; `real` is ViT-B-32 at 224 px. detect: RT-DETR with its
backbone frozen (the default) and whole; `real` is RT-DETR R18-vd at 640 px (the sizes of the
detection-rtdetr-r18 preset, PekingU/rtdetr_r18vd). Both real architectures have random weights:
speed needs no trained weights. Steps run on random pixels (and, for detection, two random boxes per
image) after one warm-up step; each configuration runs in its own process so that its peak memory is
its own.
"""

from __future__ import annotations

import argparse
import sys
import time

from common import REPO, child_run, pick_device, run_isolated, sync

RTDETR_R18_CONFIG = {  # RT-DETR R18-vd: ResNet-18-vd (basic blocks), hybrid encoder of width 256, 3 decoder layers
    "model": {"backbone_config": {"model_type": "rt_detr_resnet", "layer_type": "basic", "depths": [2, 2, 2, 2],
                                  "hidden_sizes": [64, 128, 256, 512], "embedding_size": 64,
                                  "out_features": ["stage2", "stage3", "stage4"], "out_indices": [2, 3, 4]},
              "encoder_in_channels": [128, 256, 512], "hidden_expansion": 0.5, "decoder_layers": 3},
    "image_size": 640,
}
METHODS = {"classify": ("selective-lora", "lora", "linear"), "detect": ("frozen backbone", "whole model")}


def peak_mib(device: str) -> float:
    import resource

    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def classifier_steps(arch: str, method: str, device: str, batch: int):
    """(size, run(steps)) for the CLIP classifier."""
    import open_clip
    import torch

    from engine.finetune.classify import Params
    from engine.finetune.classify.model import CLIPClassifier, LoraSettings
    from engine.finetune.classify.train import train
    from engine.loading import build_random_open_clip
    from engine.presets import get_preset

    config = get_preset("finetune-clip-tiny").config if arch == "tiny" else open_clip.get_model_config("ViT-B-32")
    model = build_random_open_clip(config)
    size = model.visual.image_size
    size = size[0] if isinstance(size, tuple) else size
    head = torch.nn.functional.normalize(torch.randn(4, config["embed_dim"]), dim=-1)
    lora = LoraSettings(selective=method == "selective-lora") if method != "linear" else None
    classifier = CLIPClassifier(model.visual, head, 100.0, ["a", "b", "c", "d"], lora).to(device)
    pixels, labels = torch.randn(batch, 3, size, size), [i % 4 for i in range(batch)]

    def run(steps: int) -> None:
        settings = Params(method=method, steps=steps, batch_size=batch, augment=False)
        train(classifier, pixels, labels, pixels[:0], [], settings)

    return size, run


def detector_steps(arch: str, method: str, device: str, batch: int):
    """(size, run(steps)) for the RT-DETR detector, with a new 4-class head as fine-tuning makes it."""
    import torch

    from engine.finetune.detect import Params
    from engine.finetune.detect.train import train
    from engine.models.rtdetr import Detector, InputSpec, build_random_rtdetr, new_class_head
    from engine.presets import get_preset

    config = get_preset("detection-tiny").config if arch == "tiny" else RTDETR_R18_CONFIG
    model = build_random_rtdetr(config)
    classes = ["a", "b", "c", "d"]
    new_class_head(model, classes)
    size = config["image_size"]
    detector = Detector(model.to(device), classes, InputSpec(size, size), "bench", method == "whole model")
    generator = torch.Generator().manual_seed(0)
    encoded = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator)
    centres = 0.3 + 0.4 * torch.rand(batch, 2, 2, generator=generator)
    targets = [{"class_labels": torch.tensor([i % 4, (i + 1) % 4]),
                "boxes": torch.cat([centres[i], torch.full((2, 2), 0.2)], dim=1)} for i in range(batch)]

    def run(steps: int) -> None:
        settings = Params(steps=steps, batch_size=batch, learning_rate=1e-4, augment=False)
        train(detector, encoded, targets, encoded[:0], [], settings)

    return size, run


def run_one(task: str, arch: str, method: str, device: str, steps: int, batch: int) -> dict:
    """One configuration, in this process: `steps` timed steps after one warm-up step."""
    import torch

    size, run = (classifier_steps if task == "classify" else detector_steps)(arch, method, device, batch)
    run(1)
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    run(steps)
    sync(device)
    return {"task": task, "arch": arch, "method": method, "device": device, "batch": batch, "image_size": size,
            "threads": torch.get_num_threads(), "s_per_step": round((time.perf_counter() - start) / steps, 4),
            "peak_mib": round(peak_mib(device), 1),
            "memory": "CUDA allocated" if device.startswith("cuda") else "process RSS"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="both", choices=["classify", "detect", "both"])
    parser.add_argument("--arch", default="both", choices=["tiny", "real", "both"])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present, else cpu)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=None, help="default: 16 (classify), 4 (detect)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if child_run(args.one, run_one):
        return
    device, description = pick_device(args.device)
    tasks = ["classify", "detect"] if args.task == "both" else [args.task]
    archs = ["tiny", "real"] if args.arch == "both" else [args.arch]
    print(f"device {device} ({description})")
    print(f"{'task':8} {'arch':5} {'method':15} {'batch':>5} {'px':>4} {'s/step':>8} {'peak MiB':>9}")
    for task in tasks:
        batch = args.batch or (16 if task == "classify" else 4)
        for arch in archs:
            for method in METHODS[task]:
                r = run_isolated(__file__, {"task": task, "arch": arch, "method": method, "device": device,
                                            "steps": args.steps, "batch": batch})
                print(f"{r['task']:8} {r['arch']:5} {r['method']:15} {r['batch']:>5} {r['image_size']:>4} "
                      f"{r['s_per_step']:>8.4f} {r['peak_mib']:>9.1f}  ({r['memory']}, {r['threads']} threads)",
                      flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
