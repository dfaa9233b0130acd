"""CLI of few-shot fine-tuning and the use of its models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import data_files, image_files, named, print_progress, tool_presets
from engine.errors import UserInputError
from engine.presets import presets_for


def _chosen(**values) -> dict:
    """The options given on the command line (the rest keep the settings' defaults)."""
    return {key: value for key, value in values.items() if value is not None}


def _print_run(summary: dict, out: Path) -> None:
    for item in summary["skipped"]:
        print(f"skipped  {item['error']}", file=sys.stderr)
    for note in summary["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(f"stopped: {summary['stopped']} (best step {summary['best_step']}); model in {out / 'model'}")


def _finetune_predict(args: argparse.Namespace) -> None:
    from engine.finetune.artifacts import read_meta, task_of

    if not args.model or bool(args.images) == bool(args.video):
        raise UserInputError("predict needs --model and either --images or --video.")
    model = Path(args.model)
    if task_of(read_meta(model)) == "detect":
        from engine.finetune.detection.runs import predict_files as detect_files

        if args.video or not args.out:
            raise UserInputError("predict with a detector needs --images and --out (for the drawn boxes).")
        report, _ = detect_files(model, image_files(args.images), Path(args.out), args.threshold, args.device,
                                 progress=print_progress)
        for row in report["predictions"]:
            for box in row["boxes"]:
                print(f"{box['score']:.4f}  {box['category']}  {row['file']}  {box['box']}")
        return
    from engine.finetune.runs import predict_files, predict_video

    report = (predict_video(model, named([args.video])[0], args.alpha, stride=args.stride, device=args.device)
              if args.video else predict_files(model, image_files(args.images), args.alpha, args.device))
    for row in report["predictions"]:
        print(f"{row['probability']:.4f}  {row['class']}  {row['file']}")


def _finetune_detect(args: argparse.Namespace) -> None:
    import tempfile

    from engine.finetune.detection.data import load_detection_set
    from engine.finetune.detection.runs import train_and_save
    from engine.finetune.detection.train import DetectSettings

    if not args.data or not args.out:
        raise UserInputError("detect needs --data (images and annotations, folders or zips) and --out.")
    preset = args.preset or presets_for("finetune-detect")[0].name
    settings = DetectSettings(**_chosen(steps=args.steps, learning_rate=args.lr, time_budget_s=args.time_budget,
                                        seed=args.seed, batch_size=args.batch_size,
                                        train_backbone=args.train_backbone or None))
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="fewshot-detect-") as work:
        dataset = load_detection_set(data_files(args.data), Path(work), args.format)
        summary, _ = train_and_save(dataset, preset, settings, out, args.name or "detector", args.device,
                                    print_progress)
    for label in ("baseline", "fine_tuned"):
        metrics = summary["metrics"][label]
        if metrics:
            print(f"{label:10} mAP@0.5 {metrics['map_50']:.3f}  mAP@[.5:.95] {metrics['map']:.3f} on "
                  f"{metrics['images']} held-out images ({metrics['boxes']} boxes)")
    _print_run(summary, out)


def cmd_finetune(args: argparse.Namespace) -> None:
    import json
    import tempfile

    from engine.finetune.data import gather_sources, load_labelled_set
    from engine.finetune.runs import kshot_evaluation, train_and_save
    from engine.finetune.train import TrainSettings

    if args.mode == "predict":
        return _finetune_predict(args)
    if args.mode == "detect":
        return _finetune_detect(args)
    if not args.data or not args.out:
        raise UserInputError("classify needs --data (class folders or zips of them) and --out.")
    preset = args.preset or presets_for("finetune")[0].name
    settings = TrainSettings(method=args.method, lora_rank=args.rank, lora_blocks=args.blocks,
                             **_chosen(steps=args.steps, learning_rate=args.lr, time_budget_s=args.time_budget,
                                       seed=args.seed, batch_size=args.batch_size))
    paths = [Path(p) for p in args.data]
    unextracted: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="fewshot-finetune-") as work:
        by_class = gather_sources([p for p in paths if p.is_dir()], named([str(p) for p in paths if p.is_file()]),
                                  work_dir=Path(work), skipped=unextracted)
        data = load_labelled_set(by_class, unextracted)
    out = Path(args.out)
    if args.shots:
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise UserInputError(f"--seeds: whole numbers separated by commas, not {args.seeds[:80]!r}.") from None
        report = kshot_evaluation(data, preset, settings, args.shots, seeds, args.device, print_progress)
        out.mkdir(parents=True, exist_ok=True)
        (out / "kshot.json").write_text(json.dumps(report, indent=1))
        for key in ("zero_shot_accuracy", "fine_tuned_accuracy"):
            print(f"{key}: {report[key]['mean']:.3f} +- {report[key]['std']:.3f} ({args.shots}-shot, seeds {seeds})")
        return
    summary, _ = train_and_save(data, preset, settings, out, args.name or "classifier", named(args.unlabeled),
                                args.device, print_progress)
    for label in ("zero_shot", "fine_tuned"):
        metrics = summary["metrics"][label]
        if metrics:
            print(f"{label:10} accuracy {metrics['accuracy']:.3f} on {metrics['images']} held-out images")
    _print_run(summary, out)


def add_commands(commands: argparse._SubParsersAction) -> None:
    finetune = commands.add_parser("finetune", help="few-shot fine-tuning: a CLIP classifier or an RT-DETR detector, "
                                   "or use the result")
    finetune.add_argument("mode", choices=["classify", "detect", "predict"])
    finetune.add_argument("--data", nargs="+", help="classify: folders with a sub-folder per class, or zips of that; "
                          "detect: images and annotations (COCO JSON, YOLO txt + classes.txt, VOC XML), folders, "
                          "files or zips")
    finetune.add_argument("--out", help="classify, detect: folder for model/, model.zip, metrics.json, history.csv; "
                          "predict with a detector: folder for detections.json and the drawn boxes")
    finetune.add_argument("--name", help="classify, detect: the model's name (default: classifier, detector)")
    finetune.add_argument("--preset", choices=tool_presets("finetune") + tool_presets("finetune-detect"),
                          help="default: finetune-clip-vit-b-32 (classify), detection-rtdetr-r18 (detect)")
    finetune.add_argument("--format", default="auto", choices=["auto", "coco", "yolo", "voc"],
                          help="detect: annotation format")
    finetune.add_argument("--method", default="lora", choices=["lora", "linear"])
    finetune.add_argument("--rank", type=int, default=8, help="LoRA rank")
    finetune.add_argument("--blocks", default="all", help="LoRA blocks: all, last:N or 0,3,5")
    finetune.add_argument("--steps", type=int, help="default: 60 (classify), 150 (detect)")
    finetune.add_argument("--batch-size", type=int, help="default: 16 (classify), 4 (detect)")
    finetune.add_argument("--lr", type=float, help="default: 1e-3 (classify), the preset's (detect)")
    finetune.add_argument("--time-budget", type=float, help="seconds (default 900)")
    finetune.add_argument("--seed", type=int, default=0)
    finetune.add_argument("--train-backbone", action="store_true", help="detect: train the backbone too")
    finetune.add_argument("--unlabeled", nargs="+", help="classify: unlabeled images (transductive entropy term)")
    finetune.add_argument("--shots", type=int, help="classify: K-shot evaluation instead (K per class, rest tested)")
    finetune.add_argument("--seeds", default="0,1,2", help="K-shot evaluation seeds")
    finetune.add_argument("--model", help="predict: a model folder (the model/ of a classify or detect run)")
    finetune.add_argument("--images", nargs="+", help="predict: images or folders")
    finetune.add_argument("--video", help="predict with a classifier: a video whose sampled frames are classified")
    finetune.add_argument("--stride", type=int, default=10, help="predict --video: every N-th frame")
    finetune.add_argument("--alpha", type=float, default=1.0, help="classifier WiSE-FT mix: 0 zero-shot, 1 fine-tuned")
    finetune.add_argument("--threshold", type=float, default=0.5, help="predict with a detector: lowest box score")
    finetune.add_argument("--device")
    finetune.set_defaults(run=cmd_finetune)
