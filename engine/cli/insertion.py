"""CLI of object insertion."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import named, print_progress, tool_presets
from engine.presets import get_preset


def cmd_insert(args: argparse.Namespace) -> None:
    import json

    from engine.insertion import InsertionSettings, get_pipeline
    from engine.insertion.runs import run_image, run_video

    preset = get_preset(args.preset)
    settings = InsertionSettings(args.prompt, args.negative_prompt, seed=args.seed, steps=args.steps,
                                 guidance=args.guidance, strength=args.strength, mode=args.mode).check()
    pipeline = get_pipeline(preset.name, device=args.device)
    if args.image:
        summary, files = run_image(pipeline, named([args.image])[0], settings, Path(args.out), named(args.mask),
                                   args.box, variants=args.variants, preset=preset, progress=print_progress)
    else:
        summary, files = run_video(pipeline, named([args.video])[0], settings, Path(args.out), args.region,
                                   args.anchor_frame, named(args.mask), args.box, args.keyframes,
                                   named(args.frame_masks), not args.no_extended_attention, args.chunk_size,
                                   preset=preset, progress=print_progress)
    for note in summary["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(json.dumps({"outputs": [str(Path(args.out) / name) for name in files]}))


def add_commands(commands: argparse._SubParsersAction) -> None:
    insert = commands.add_parser("insert", help="insert or replace an object in an image or a video (InVi)")
    source = insert.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="image file")
    source.add_argument("--video", help="video file (the region is marked on the anchor frame)")
    insert.add_argument("--prompt", required=True, help="the object to insert (replace: the new object)")
    insert.add_argument("--negative-prompt", default="")
    insert.add_argument("--box", help="region x0,y0,x1,y1 in pixels (of the image or the anchor frame)")
    insert.add_argument("--mask", nargs="+", help="mask images (white = region, or a drawn transparent layer)")
    insert.add_argument("--mode", default="insert", choices=["insert", "replace"])
    insert.add_argument("--region", default="same", choices=["same", "interpolate", "masks"],
                        help="video: the anchor's region on every frame, boxes interpolated between --keyframes, "
                        "or one of --frame-masks per frame")
    insert.add_argument("--keyframes", help="video, --region interpolate: lines of 'frame: x0,y0,x1,y1'")
    insert.add_argument("--frame-masks", nargs="+", help="video, --region masks: one mask per frame (name order)")
    insert.add_argument("--anchor-frame", type=int, default=0)
    insert.add_argument("--no-extended-attention", action="store_true", help="video: frames independently")
    insert.add_argument("--chunk-size", type=int, help="video: frames per denoising batch (default 4 GPU, 1 CPU)")
    insert.add_argument("--seed", type=int, default=0)
    insert.add_argument("--variants", type=int, default=1, help="image: results for seeds seed, seed+1, ...")
    insert.add_argument("--steps", type=int, default=20)
    insert.add_argument("--guidance", type=float, default=7.5)
    insert.add_argument("--strength", type=float, default=1.0)
    insert.add_argument("--preset", default="insertion-sd15-controlnet-inpaint", choices=tool_presets("insertion"))
    insert.add_argument("--out", required=True, help="folder for the results and summary.json")
    insert.add_argument("--device")
    insert.set_defaults(run=cmd_insert)
