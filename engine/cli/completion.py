"""CLI of annotation completion and its evaluation: the options are the jobs' parameters."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli.common import data_files, print_notes, print_progress
from engine.completion import complete, evaluate
from engine.params import add_arguments, from_args

OPTION_OF = {"score_threshold": "--threshold", "video_stride": "--stride", "drop_fraction": "--drop"}
"""Parameters whose option keeps a shorter name than the parameter."""
NOT_OPTIONS = ("detector_model",)  # a saved detector's name is looked up by the job system; here: --detector DIR


def cmd_complete(args: argparse.Namespace) -> None:
    data = data_files(args.data or [])
    out = Path(args.out)
    if args.mode == "evaluate":
        report = evaluate.run(evaluate.Inputs(images=data, annotations=[]), from_args(evaluate.Params, args), out,
                              print_progress).to_json()
    else:
        video = [(Path(args.video).name, Path(args.video))] if args.video else []
        report = complete.run(complete.Inputs(images=data, annotations=[], video=video),
                              from_args(complete.Params, args), out, print_progress).to_json()
    print_notes(report.get("skipped", []), report.get("notes", []))
    if args.mode == "evaluate":
        print(f"{report['hidden']} of {report['boxes']} boxes hidden (seed {report['seed']}); "
              f"IoU {report['metrics']['iou']}, score >= {report['metrics']['score_threshold']}")
        print(f"{'class':14} {'hidden':>6} {'found':>6} {'proposals':>9} {'recall':>7} {'precision':>9}")
        rows = [*report["metrics"]["per_class"].items(), ("all", report["metrics"]["overall"])]
        for name, m in rows:
            cells = [f"{v:>7.3f}" if v is not None else f"{'-':>7}" for v in (m["recall"], m["precision"])]
            print(f"{name:14} {m['hidden']:>6} {m['found']:>6} {m['proposals']:>9} {cells[0]} {cells[1]:>9}")
    else:
        print(json.dumps({k: report[k] for k in ("images", "existing_boxes", "exemplars", "proposals",
                                                 "proposals_above_threshold", "per_class_above_threshold")}))
    print(f"outputs in {out}", file=sys.stderr)


def add_commands(commands: argparse._SubParsersAction) -> None:
    complete_parser = commands.add_parser("complete", help="annotation completion: propose missing boxes, or "
                                                           "evaluate it")
    complete_parser.add_argument("mode", choices=["run", "evaluate"], help="run: complete a set; evaluate: hide "
                                 "boxes of a fully annotated set, complete, report recall and precision at IoU 0.5")
    complete_parser.add_argument("--data", nargs="+", help="folders or files: images (or zips) and annotations in "
                                 "COCO JSON, YOLO txt + classes.txt, or Pascal VOC XML")
    complete_parser.add_argument("--video", help="run: a video whose sampled frames become the images")
    add_arguments(complete_parser, evaluate.Params, skip=(*OPTION_OF, *NOT_OPTIONS))
    for name, option in OPTION_OF.items():
        spec = evaluate.Params.spec(name)
        complete_parser.add_argument(option, dest=name, help=f"{spec.help}; default {spec.default}")
    complete_parser.add_argument("--out", required=True, help="folder for proposals.json, exports (and metrics.json)")
    complete_parser.set_defaults(run=cmd_complete)
