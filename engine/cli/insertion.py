"""CLI of object insertion: the options are the job's parameters (engine.insertion.insert.Params)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from engine.cli.common import named, print_notes, print_progress
from engine.insertion.insert import Inputs, Params, run
from engine.params import add_arguments, from_args


def cmd_insert(args: argparse.Namespace) -> None:
    import json

    if args.device:
        os.environ["FEWSHOT_DEVICE"] = args.device  # the device the job's pipeline is loaded on
    inputs = Inputs(image=named([args.image] if args.image else None),
                    video=named([args.video] if args.video else None),
                    mask=named(args.mask), masks=named(args.frame_masks))
    result = run(inputs, from_args(Params, args), Path(args.out), print_progress)
    print_notes(notes=result.notes)
    print(json.dumps({"outputs": [str(Path(args.out) / name) for name in result.outputs]}))


def add_commands(commands: argparse._SubParsersAction) -> None:
    insert = commands.add_parser("insert", help="insert or replace an object in an image or a video (InVi)")
    source = insert.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="image file")
    source.add_argument("--video", help="video file (the region is marked on the anchor frame)")
    insert.add_argument("--mask", nargs="+", help="mask images (white = region, or a drawn transparent layer)")
    insert.add_argument("--frame-masks", nargs="+", help="video, --region masks: one mask per frame (name order)")
    add_arguments(insert, Params, skip=("region_mode",))
    region = Params.spec("region_mode")
    insert.add_argument("--region", dest="region_mode", choices=region.choices,
                        help=f"{region.help}; default {region.default}")
    insert.add_argument("--out", required=True, help="folder for the results and summary.json")
    insert.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    insert.set_defaults(run=cmd_insert)
