"""CLI of anomaly inspection and its evaluation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import image_files, print_progress, tool_presets
from engine.errors import UserInputError
from engine.presets import get_preset


def _threshold_arg(value: str) -> str | float:
    if value in ("auto", "calibrate"):
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("use auto, calibrate or a number between 0 and 1") from None


def cmd_anomaly(args: argparse.Namespace) -> None:
    from engine.anomaly import get_pipeline
    from engine.anomaly.inspection import inspect_images, inspect_video

    if bool(args.images) == bool(args.video):
        raise UserInputError("Give either --images (files, folders or zips) or --video, not both.")
    preset = get_preset(args.preset)
    references = image_files(args.refs) if args.refs else None
    pipeline = get_pipeline(preset.name, device=args.device)
    out = Path(args.out)
    if args.video:
        summary, _ = inspect_video(pipeline, preset, (Path(args.video).name, Path(args.video)), args.object, out,
                                   references, threshold=args.threshold, stride=args.stride, fps=args.fps,
                                   batch_size=args.batch_size, progress=print_progress)
        rows = [(r["score"], r["verdict"], r["file"]) for r in summary["frames"]]
    else:
        summary, _ = inspect_images(pipeline, preset, image_files(args.images), args.object, out, references,
                                    threshold=args.threshold, batch_size=args.batch_size, progress=print_progress)
        rows = [(r["score"], r["verdict"], r["file"]) for r in summary["images"]]
    threshold = summary["threshold"]
    print(f"threshold {threshold['image']:.4f} ({threshold['source']}): {threshold['rule']}")
    for score, verdict, name in rows:
        print(f"{score:.4f}  {verdict}  {name}")
    for item in summary["skipped"]:
        print(f"skipped  {item['error']}", file=sys.stderr)
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from engine.anomaly import get_pipeline
    from engine.anomaly.evaluation import evaluate_folder, write_report

    pipeline = get_pipeline(get_preset(args.preset).name, device=args.device)
    report = evaluate_folder(pipeline, args.data, args.object, shots=args.shots,
                             progress=print_progress)
    write_report(report, Path(args.out))
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{'':14} {'image AUROC':>11} {'pixel AUROC':>11} {'PRO@30%':>8} {'F1-max':>7}")
    rows = [("all", report["metrics"]), *report["metrics"]["per_defect_type"].items()]
    for name, m in rows:
        cells = [m.get(key) for key in ("image_auroc", "pixel_auroc", "pro", "image_f1_max")]
        print(f"{name:14} " + " ".join(f"{v:>11.3f}" if v is not None else f"{'-':>11}" for v in cells))


def add_commands(commands: argparse._SubParsersAction) -> None:
    anomaly = commands.add_parser("anomaly", help="WinCLIP / WinCLIP+ inspection of images or a video")
    anomaly.add_argument("--images", nargs="+", help="image files, folders or zips of images")
    anomaly.add_argument("--video", help="one video file (mp4, webm, mov, avi, mkv)")
    anomaly.add_argument("--object", required=True, help="object name, e.g. 'metal plate'")
    anomaly.add_argument("--refs", nargs="+", help="images or folders of good parts: switches on WinCLIP+")
    anomaly.add_argument("--threshold", type=_threshold_arg, default="auto",
                         help="auto (calibrated from 2+ good parts, else 0.5), calibrate, or a value in [0, 1]")
    anomaly.add_argument("--stride", type=int, help="video: score every Nth frame")
    anomaly.add_argument("--fps", type=float, help="video: score about this many frames per second")
    anomaly.add_argument("--preset", default="winclip-vit-b-16-plus-240", choices=tool_presets("anomaly"))
    anomaly.add_argument("--out", required=True, help="folder for maps, overlays, scores.json and scores.csv")
    anomaly.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    anomaly.add_argument("--batch-size", type=int, help="images per forward pass (default: 8 on GPU, 1 on CPU)")
    anomaly.set_defaults(run=cmd_anomaly)
    evaluation = commands.add_parser("evaluate", help="metrics on a labelled folder in the MVTec AD layout")
    evaluation.add_argument("--data", required=True, help="folder with test/, ground_truth/ and train/good/")
    evaluation.add_argument("--object", required=True)
    evaluation.add_argument("--shots", type=int, default=0, help="good references from train/good (WinCLIP+)")
    evaluation.add_argument("--preset", default="winclip-vit-b-16-plus-240", choices=tool_presets("anomaly"))
    evaluation.add_argument("--out", required=True, help="folder for metrics.json, scores.csv, roc.png")
    evaluation.add_argument("--device")
    evaluation.set_defaults(run=cmd_evaluate)
