"""CLI of few-shot fine-tuning and the use of its models: one sub-command per job kind, its options built from
the kind's Params (a few keep their short historical names: --name, --rank, --blocks, --lr, --time-budget,
--threshold) and the same `run` as the job."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from engine.cli.common import data_files, image_files, named, print_notes, print_progress
from engine.errors import UserInputError
from engine.params import NamedFile, Params, add_arguments, from_args
from engine.progress import ignore_progress

RENAMED = {"model_name": "--name", "lora_rank": "--rank", "lora_blocks": "--blocks", "learning_rate": "--lr",
           "time_budget_s": "--time-budget", "score_threshold": "--threshold"}


def _options(parser: argparse.ArgumentParser, params: type[Params], skip: tuple[str, ...] = ()) -> None:
    """The Params' options, under their historical names where they have one."""
    renamed = {spec.name for spec in params.specs()} & set(RENAMED)
    add_arguments(parser, params, skip=(*skip, *renamed))
    for name in sorted(renamed):
        spec = params.spec(name)
        default = f"; default {spec.default}" if spec.default not in (None, "") else ""
        parser.add_argument(RENAMED[name], dest=name, default=None, help=f"{spec.help}{default}")


def _print_run(summary: dict, out: Path) -> None:
    print_notes(summary["skipped"], summary["notes"])
    print(f"stopped: {summary['stopped']} (best step {summary['best_step']}); model in {out / 'model'}")


def cmd_classify(args: argparse.Namespace) -> None:
    from engine.finetune import classify

    if not args.data or not args.out:
        raise UserInputError("classify needs --data (class folders or zips of them) and --out.")
    from engine.finetune.classify.forgetting import retention_line
    from engine.finetune.classify.selective import active_blocks_line

    params = from_args(classify.Params, args, model_name=args.model_name or "classifier")
    inputs = classify.Inputs(named(args.data), named(args.unlabeled), retention=named(args.retention))
    out = Path(args.out)
    if args.shots:
        return _kshot("classify", inputs.dataset, params, args, out)
    summary = classify.run(inputs, params, out, print_progress, device=args.device).to_json()
    for label in ("zero_shot", "fine_tuned"):
        metrics = summary["metrics"][label]
        if metrics:
            print(f"{label:10} accuracy {metrics['accuracy']:.3f} on {metrics['images']} held-out images")
    if summary["blocks"]:
        print(f"active blocks: {active_blocks_line(summary['blocks'])}")
    print(f"retention: {retention_line(summary['retention'])}")
    print(f"trainable parameters: {summary['trainable_parameters']:,} (kept in the saved model)")
    if summary["comparison"]:
        print(f"{'method':22} {'new task':>8} {'retention':>9} {'active blocks':>13} {'trainable':>10}")
        for row in summary["comparison"]:
            print(f"{row['method']:22} {row['new_task_accuracy']:8.3f} {row['retention_accuracy']:9.3f} "
                  f"{row['active_blocks']:>6} of {row['blocks']:<4} {row['trainable_parameters']:>10,}")
        print(f"wrote methods.json, methods.csv, methods.png in {out}")
    _print_run(summary, out)


def _kshot(task: str, dataset: list[NamedFile], training: Params, args: argparse.Namespace, out: Path) -> None:
    """K-shot evaluation instead of one training run (the finetune_kshot job's run): per seed, K images per class
    to train on, the rest to test; each seed's metrics, then their mean and spread."""
    from engine.finetune import kshot

    params = from_args(kshot.Params, args, task=task, training=training.to_dict())
    result = kshot.run(kshot.Inputs(dataset), params, out, print_progress, device=args.device)
    print_notes(result.skipped, result.notes)
    print(f"sampling: {result.sampling}")
    for row in result.runs:
        values = "  ".join(f"{label} {_shown(row[key])}" for key, label in result.metrics.items())
        print(f"seed {row['seed']}: {values} ({row['train_images']} training, {row['test_images']} test images)")
    for key, label in result.metrics.items():
        print(f"{label}: {_shown(result.summary[key]['mean'])} +- {_shown(result.summary[key]['std'])} "
              f"({params.shots}-shot, seeds {', '.join(map(str, params.seeds))})")
    print(f"table in {out / kshot.TABLE_FILE}")


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def cmd_detect(args: argparse.Namespace) -> None:
    from engine.finetune import detect

    if not args.data or not args.out:
        raise UserInputError("detect needs --data (images and annotations, folders or zips) and --out.")
    params = from_args(detect.Params, args, model_name=args.model_name or "detector")
    out = Path(args.out)
    if args.shots:
        return _kshot("detect", data_files(args.data), params, args, out)
    summary = detect.run(detect.Inputs(data_files(args.data)), params, out, print_progress,
                         device=args.device).to_json()
    for label in ("baseline", "fine_tuned"):
        metrics = summary["metrics"][label]
        if metrics:
            print(f"{label:10} mAP@0.5 {metrics['map_50']:.3f}  mAP@[.5:.95] {metrics['map']:.3f} on "
                  f"{metrics['images']} held-out images ({metrics['boxes']} boxes)")
    _print_run(summary, out)


def cmd_predict(args: argparse.Namespace) -> None:
    from engine.finetune import predict
    from engine.models.saved import read_meta, task_of

    params = from_args(predict.Params, args)
    if not params.model or bool(args.images) == bool(args.video):
        raise UserInputError("predict needs --model and either --images or --video.")
    detector = task_of(read_meta(Path(params.model))) == "detect"
    if detector and (args.video or not args.out):
        raise UserInputError("predict with a detector needs --images and --out (for the drawn boxes).")
    inputs = predict.Inputs(image_files(args.images) if args.images else [], named([args.video] if args.video else []))
    with tempfile.TemporaryDirectory(prefix="fewshot-predict-") as scratch:
        out = Path(args.out) if args.out else Path(scratch) / "out"  # a classifier's predictions are printed
        report = predict.run(inputs, params, out, print_progress if detector else ignore_progress,
                             device=args.device)
    for row in report.predictions:
        if detector:
            for box in row["boxes"]:
                print(f"{box['score']:.4f}  {box['category']}  {row['file']}  {box['box']}")
        else:
            print(f"{row['probability']:.4f}  {row['class']}  {row['file']}")
    print_notes(notes=report.notes)


def _kshot_options(parser: argparse.ArgumentParser) -> None:
    """--kshot K (or --shots K) and --seeds: a K-shot evaluation (the finetune_kshot job) instead of one training."""
    from engine.finetune import kshot

    spec = kshot.Params.spec("shots")
    parser.add_argument("--kshot", "--shots", dest="shots", default=None,
                        help=f"K-shot evaluation instead of one training: {spec.help} [{spec.ge:g}..{spec.le:g}]")
    add_arguments(parser, kshot.Params, skip=("task", "shots", "training"))


def add_commands(commands: argparse._SubParsersAction) -> None:
    from engine.finetune import classify, detect, predict

    finetune = commands.add_parser("finetune", help="few-shot fine-tuning: a CLIP classifier or an RT-DETR detector, "
                                   "or use the result")
    modes = finetune.add_subparsers(dest="mode", required=True)
    train = modes.add_parser("classify", help="train a classifier on a folder (or zip) per class")
    train.add_argument("--data", nargs="+", help="folders with a sub-folder per class, or zips of that")
    train.add_argument("--unlabeled", nargs="+", help="unlabeled images (transductive entropy term)")
    train.add_argument("--retention", nargs="+", help="images of other classes (folders with a sub-folder per "
                       "class, or zips) to measure forgetting on; default: generated shapes")
    _options(train, classify.Params, skip=("class_names",))
    _kshot_options(train)
    train.set_defaults(run=cmd_classify)
    boxes = modes.add_parser("detect", help="train a detector on annotated images")
    boxes.add_argument("--data", nargs="+", help="images and annotations (COCO JSON, YOLO txt + classes.txt, VOC "
                       "XML): folders, files or zips")
    _options(boxes, detect.Params)
    _kshot_options(boxes)
    boxes.set_defaults(run=cmd_detect)
    use = modes.add_parser("predict", help="use a trained model (the model/ folder of a classify or detect run)")
    use.add_argument("--images", nargs="+", help="images or folders")
    use.add_argument("--video", help="with a classifier: a video whose sampled frames are classified")
    _options(use, predict.Params)
    use.set_defaults(run=cmd_predict)
    for mode, what in ((train, "model/, model.zip, metrics.json, history.csv"), (boxes, "the same"),
                       (use, "predictions.json, .csv and thumbnails (a detector: detections.json, .csv "
                              "and the drawn boxes)")):
        mode.add_argument("--out", help=f"folder for {what}")
        mode.add_argument("--device")
