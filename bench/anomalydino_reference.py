"""Compare this project's AnomalyDINO with anomalib's (`AnomalyDINOModel`) on identical random weights and inputs.

Run from the repository root with the project's environment; anomalib runs in its own virtual environment
(it is not a dependency of the project), given by --anomalib-python (default /work/venv-anomalib/bin/python):

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/anomalydino_reference.py

Both sides get the `anomalydino-tiny` weights (transformers' key names mapped to timm's, the backbone anomalib
builds) and the same normalised 224 x 224 inputs, so no resize or position-embedding interpolation differs.
Printed: the largest differences of patch scores, image scores and maps, after putting anomalib's 1 - cos on our
(1 - cos) / 2 scale, and of the background masks on the same features. anomalib's maps upsample the patch grid
with nearest-neighbour and blur with a whole-sample reflect border; the authors (and this project) resize
bilinearly and blur with scipy's half-sample reflect, so the maps are also compared with the authors' own
`dists2map` (cv2.resize INTER_LINEAR + scipy gaussian_filter, sigma 4) applied to anomalib's patch grid.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SIZE = 224  # the tiny preset's input size and its position-embedding grid (16 x 16 patches of 14 px)
MASK_SCALES = (1.0, 4.0, 10.0)  # features scaled so the fixed threshold (10) splits them in some runs


def timm_state_dict(hf_state: dict, layers: int) -> dict:
    """transformers Dinov2Model weights under timm VisionTransformer names (q, k, v fused into qkv)."""
    out = {"cls_token": hf_state["embeddings.cls_token"], "pos_embed": hf_state["embeddings.position_embeddings"],
           "patch_embed.proj.weight": hf_state["embeddings.patch_embeddings.projection.weight"],
           "patch_embed.proj.bias": hf_state["embeddings.patch_embeddings.projection.bias"],
           "norm.weight": hf_state["layernorm.weight"], "norm.bias": hf_state["layernorm.bias"]}
    for i in range(layers):
        hf, timm = f"encoder.layer.{i}.", f"blocks.{i}."
        for kind in ("weight", "bias"):
            out[timm + f"attn.qkv.{kind}"] = np.concatenate(
                [hf_state[hf + f"attention.{name}_proj.{kind}"] for name in ("q", "k", "v")])
            out[timm + f"attn.proj.{kind}"] = hf_state[hf + f"attention.o_proj.{kind}"]
            for name in ("norm1", "norm2", "mlp.fc1", "mlp.fc2"):
                out[timm + f"{name}.{kind}"] = hf_state[hf + f"{name}.{kind}"]
        out[timm + "ls1.gamma"] = hf_state[hf + "layer_scale1.lambda1"]
        out[timm + "ls2.gamma"] = hf_state[hf + "layer_scale2.lambda1"]
    return out


def test_images(count: int, seed: int) -> list:
    """Smooth random textures with a few rectangles: structured enough that patches differ."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        image = Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).filter(
            ImageFilter.GaussianBlur(3))
        draw = ImageDraw.Draw(image)
        for _ in range(3):
            x, y = rng.integers(0, SIZE - 40, 2)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            draw.rectangle([int(x), int(y), int(x) + 40, int(y) + 30], fill=colour)
        images.append(image)
    return images


def project_side(work: Path, anomalib_python: str) -> None:
    import torch

    from engine.anomaly.anomalydino import AnomalyDinoPipeline, background_mask, patch_scores
    from engine.anomaly.pipeline import normalized_pixels
    from engine.presets import get_preset

    os.environ.setdefault("FEWSHOT_MODELS_DIR", str(work / "models"))
    pipeline = AnomalyDinoPipeline.from_pretrained("anomalydino-tiny", device="cpu")
    references, tests = test_images(3, seed=0), test_images(4, seed=1)
    memory = pipeline.reference_memory(references)
    ours = pipeline(tests, memory)
    pixels = normalized_pixels([*references, *tests], (SIZE, SIZE), pipeline._mean, pipeline._std, torch.float32)
    state = {k: v.numpy() for k, v in pipeline.model.state_dict().items()}
    layers = get_preset("anomalydino-tiny").config["model"]["num_hidden_layers"]
    np.savez(work / "inputs.npz", pixels=pixels.numpy(), references=len(references),
             **{f"w/{k}": v for k, v in timm_state_dict(state, layers).items()})
    subprocess.run([anomalib_python, __file__, "--anomalib-side", str(work)], check=True)
    theirs = np.load(work / "anomalib.npz")
    features = [f for f, _ in pipeline.features(tests)]
    grid = (SIZE // pipeline.patch,) * 2
    our_grids = np.stack([patch_scores(f, grid, memory.patches, False).numpy() for f in features])
    their_grids = theirs["grids"] / 2  # anomalib's 1 - cos on our (1 - cos) / 2 scale
    report = {
        "features (max |ours - timm|)": float(np.abs(np.stack([f.numpy() for f in features])
                                                     - theirs["features"]).max()),
        "patch scores": float(np.abs(our_grids - their_grids).max()),
        "image scores": float(np.abs(np.array([r.score for r in ours]) - theirs["scores"] / 2).max()),
        "maps vs anomalib's (nearest upsampling)": float(np.abs(np.stack([r.anomaly_map for r in ours])
                                                                - theirs["maps"] / 2).max()),
        "maps vs authors' dists2map of anomalib's grid": float(np.abs(np.stack([r.anomaly_map for r in ours])
                                                                      - theirs["authors_maps"] / 2).max()),
        "score range (ours)": [min(r.score for r in ours), max(r.score for r in ours)],
    }
    for scale in MASK_SCALES:  # an empty mask keeps every patch here, none in anomalib (a stated deviation)
        masks = np.stack([background_mask(f * scale, grid).numpy().ravel() for f in features])
        reference, empty = theirs[f"masks_{scale:g}"], ~theirs[f"masks_{scale:g}"].any(axis=1)
        report[f"masks at feature scale {scale:g}: patches differing where anomalib's mask is not empty, "
               "patches kept (ours), images anomalib masks entirely"] = [
            int((masks != reference)[~empty].sum()), int(masks.sum()), int(empty.sum())]
    print(json.dumps(report, indent=1))


def anomalib_side(work: Path) -> None:
    import cv2
    import timm
    import torch
    from anomalib.models.image.anomaly_dino import torch_model
    from scipy.ndimage import gaussian_filter

    data = np.load(work / "inputs.npz")
    weights = {k[2:]: torch.from_numpy(data[k]) for k in data.files if k.startswith("w/")}
    layers = 1 + max(int(k.split(".")[1]) for k in weights if k.startswith("blocks."))
    embed_dim = weights["cls_token"].shape[-1]
    create_model = timm.create_model

    def tiny_model(name, **kwargs):
        kwargs["pretrained"] = False
        return create_model(name, **kwargs, img_size=SIZE, embed_dim=embed_dim, depth=layers, num_heads=2)

    timm.create_model = tiny_model
    torch_model.DINO_DEPTHS["small"] = layers
    model = torch_model.AnomalyDINOModel(masking=False)
    model.feature_encoder.feature_extractor.load_state_dict(weights, strict=True)
    pixels = torch.from_numpy(data["pixels"])
    count = int(data["references"])
    with torch.no_grad():
        model.train()
        model(pixels[:count])
        model.fit()
        model.eval()
        grids = []
        model.anomaly_map_generator.register_forward_pre_hook(lambda _, args: grids.append(args[0].clone()))
        out = model(pixels[count:])
        features = model.extract_features(pixels[count:]).numpy()
    grid = torch.cat(grids)[:, 0].numpy()
    authors = np.stack([gaussian_filter(cv2.resize(g, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR), sigma=4)
                        for g in grid])
    rows = SIZE // model.patch_size
    masks = {f"masks_{s:g}": torch_model.AnomalyDINOModel.compute_background_masks(features * s, (rows, rows))
             for s in MASK_SCALES}
    np.savez(work / "anomalib.npz", grids=grid, scores=out.pred_score.numpy().ravel(),
             maps=out.anomaly_map[:, 0].numpy(), authors_maps=authors, features=features, **masks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anomalib-python", default="/work/venv-anomalib/bin/python")
    parser.add_argument("--anomalib-side", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.anomalib_side:
        anomalib_side(args.anomalib_side)
        return
    with tempfile.TemporaryDirectory() as work:
        project_side(Path(work), args.anomalib_python)


if __name__ == "__main__":
    sys.exit(main())
