"""CLI of anomaly inspection and its evaluation: options from the jobs' `Params`, the jobs' `run`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.anomaly import evaluate, inspect_images, inspect_video
from engine.anomaly.common import score_text
from engine.cli.common import image_files, print_notes, print_progress
from engine.errors import UserInputError
from engine.params import add_arguments, from_args

# Options whose names differ from their parameter's, or that only jobs have (saved sets live in the app).
OBJECT_OPTION = {"help": "object name, e.g. 'metal plate' (WinCLIP reads it; MuSc and AnomalyDINO show it)",
                 "dest": "object_name"}
NOT_OPTIONS = ("object_name", "reference_set")


def cmd_anomaly(args: argparse.Namespace) -> None:
    if bool(args.images) == bool(args.video):
        raise UserInputError("Give either --images (files, folders or zips) or --video, not both.")
    references = image_files(args.refs) if args.refs else []
    out = Path(args.out)
    if args.video:
        video = Path(args.video)
        result = inspect_video.run(inspect_video.Inputs([(video.name, video)], references),
                                   from_args(inspect_video.Params, args), out, print_progress, args.device)
        rows = [(r["score"], r["verdict"], r["file"]) for r in result.frames]
    else:
        result = inspect_images.run(inspect_images.Inputs(image_files(args.images), references),
                                    from_args(inspect_images.Params, args), out, print_progress, args.device)
        rows = [(r["score"], r["verdict"], r["file"]) for r in result.images]
    threshold = result.threshold
    print(f"{result.mode} · {result.preset}")
    print(f"threshold {score_text(threshold.image)} ({threshold.source}): {threshold.rule}")
    for score, verdict, name in rows:
        print(f"{score_text(score)}  {verdict}  {name}")
    print_notes(result.skipped)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def cmd_evaluate(args: argparse.Namespace) -> None:
    report = evaluate.run(evaluate.Inputs([(Path(args.data).name, Path(args.data))]),
                          from_args(evaluate.Params, args), Path(args.out), print_progress, args.device)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if report.comparison:
        print(f"{'method':44} {'image AUROC':>11} {'pixel AUROC':>11} {'PRO@30%':>11} {'F1-max':>11} "
              f"{'s/image':>11}")
        for run in report.comparison:
            print(f"{run['run']:44} " + _cells([*(run["metrics"].get(k) for k in METRIC_KEYS),
                                                 run["seconds_per_image"]]))
        print(f"\nper defect type, {report.comparison[0]['run']}:")
    print(f"{'':14} {'image AUROC':>11} {'pixel AUROC':>11} {'PRO@30%':>11} {'F1-max':>11}")
    rows = [("all", report.metrics), *report.metrics["per_defect_type"].items()]
    for name, m in rows:
        print(f"{name:14} " + _cells([m.get(key) for key in METRIC_KEYS]))


METRIC_KEYS = ("image_auroc", "pixel_auroc", "pro", "image_f1_max")


def _cells(values: list[float | None]) -> str:
    return " ".join(f"{v:>11.3f}" if v is not None else f"{'-':>11}" for v in values)


def add_commands(commands: argparse._SubParsersAction) -> None:
    anomaly = commands.add_parser("anomaly", help="inspection of images or a video: WinCLIP / WinCLIP+, MuSc (a set "
                                                  "scored against itself) or AnomalyDINO (with good parts)")
    anomaly.add_argument("--images", nargs="+", help="image files, folders or zips of images")
    anomaly.add_argument("--video", help="one video file (mp4, webm, mov, avi, mkv)")
    anomaly.add_argument("--object", **OBJECT_OPTION)
    anomaly.add_argument("--refs", nargs="+", help="images or folders of good parts: WinCLIP+, AnomalyDINO's "
                                                   "references, MuSc's extra set members; 2+ calibrate the threshold")
    add_arguments(anomaly, inspect_video.Params, skip=NOT_OPTIONS)
    anomaly.add_argument("--out", required=True, help="folder for maps, overlays, scores.json and scores.csv")
    anomaly.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    anomaly.set_defaults(run=cmd_anomaly)
    evaluation = commands.add_parser("evaluate", help="metrics on a labelled folder in the MVTec AD layout")
    evaluation.add_argument("--data", required=True, help="folder with test/, ground_truth/ and train/good/")
    evaluation.add_argument("--object", **OBJECT_OPTION)
    add_arguments(evaluation, evaluate.Params, skip=NOT_OPTIONS)
    evaluation.add_argument("--out", required=True, help="folder for metrics.json, scores.csv, roc.png")
    evaluation.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    evaluation.set_defaults(run=cmd_evaluate)
