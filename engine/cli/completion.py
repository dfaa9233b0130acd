"""CLI of annotation completion and its evaluation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import data_files, print_progress, tool_presets


def cmd_complete(args: argparse.Namespace) -> None:
    import json
    import tempfile

    from engine.completion.runs import run_completion, run_evaluation

    params = {"preset": args.preset, "detector": args.detector, "format": args.format,
              "score_threshold": args.threshold, "min_score": args.min_score, "text_queries": args.text_queries,
              "device": args.device, "video_stride": args.stride, "drop_fraction": args.drop, "seed": args.seed}
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="fewshot-complete-") as work:
        if args.mode == "evaluate":
            report, _ = run_evaluation(data_files(args.data or []), Path(work), out, params, print_progress)
        else:
            video = (Path(args.video).name, Path(args.video)) if args.video else None
            report, _ = run_completion(data_files(args.data or []), Path(work), out, params, video, print_progress)
    for item in report.get("skipped", []):
        print(f"skipped  {item['error']}", file=sys.stderr)
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
    complete = commands.add_parser("complete", help="annotation completion: propose missing boxes, or evaluate it")
    complete.add_argument("mode", choices=["run", "evaluate"], help="run: complete a set; evaluate: hide boxes of "
                          "a fully annotated set, complete, report recall and precision at IoU 0.5")
    complete.add_argument("--data", nargs="+", help="folders or files: images (or zips) and annotations in COCO "
                          "JSON, YOLO txt + classes.txt, or Pascal VOC XML")
    complete.add_argument("--format", default="auto", choices=["auto", "coco", "yolo", "voc"])
    complete.add_argument("--video", help="run: a video whose sampled frames become the images")
    complete.add_argument("--stride", type=int, default=30, help="run: keep every N-th video frame (default 30)")
    complete.add_argument("--preset", default="completion-owlv2-base", choices=tool_presets("completion"))
    complete.add_argument("--detector", help="a fine-tuned detector's model folder (the model/ of `finetune detect`), "
                          "used instead of OWLv2")
    complete.add_argument("--threshold", type=float, default=0.3, help="score threshold of the completed set")
    complete.add_argument("--min-score", type=float, default=0.05, help="lowest score kept in proposals.json")
    complete.add_argument("--text-queries", action="store_true", help="also query each class by its name")
    complete.add_argument("--drop", type=float, default=0.3, help="evaluate: fraction of boxes hidden")
    complete.add_argument("--seed", type=int, default=0, help="evaluate: seed of the hidden boxes")
    complete.add_argument("--out", required=True, help="folder for proposals.json, exports (and metrics.json)")
    complete.add_argument("--device")
    complete.set_defaults(run=cmd_complete)
