"""Command line on the same engine calls as the app.

    python -m engine weights [--preset NAME ...] [--models-dir DIR]
    python -m engine anomaly --images DIRS_FILES_ZIPS... --object "metal plate" [--refs DIR] [--threshold T] --out DIR
    python -m engine anomaly --video FILE [--stride N | --fps F] --object "metal plate" [--refs DIR] --out DIR
    python -m engine evaluate --data MVTEC_CATEGORY_DIR --object "magnetic tile" [--shots K] --out DIR
    python -m engine complete run --data DIR_OR_FILES... [--video F --stride N] [--preset P | --detector DIR] --out DIR
    python -m engine complete evaluate --data DIR [--drop 0.3] [--seed 0] [--threshold 0.3] --out DIR
    python -m engine insert (--image F | --video F) (--box X0,Y0,X1,Y1 | --mask F) --prompt "a red car" --out DIR
    python -m engine finetune classify --data DIRS_OR_ZIPS... --out DIR [--method lora|linear] [--shots K --seeds 0,1,2]
    python -m engine finetune detect --data DIRS_OR_FILES_OR_ZIPS... --out DIR [--preset detection-tiny] [--steps N]
    python -m engine finetune predict --model DIR (--images FILES... [--out DIR] | --video F [--stride N]) [--alpha A]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import UserInputError, WeightsNotFoundError
from engine.media import ACCEPTED_IMAGE_SUFFIXES, list_images
from engine.presets import PRESETS, get_preset, presets_for


def _image_files(paths: list[str]) -> list[tuple[str, Path]]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += list_images(path, recursive=True)
        elif path.is_file():
            files.append(path)
        else:
            raise UserInputError(f"{raw}: no such file or directory.")
    if not files:
        raise UserInputError(f"No images found in {', '.join(paths)} ({', '.join(ACCEPTED_IMAGE_SUFFIXES)}).")
    return [(str(p), p) for p in files]


def cmd_weights(args: argparse.Namespace) -> None:
    from engine.loading import download_preset

    names = args.preset or [p.name for p in PRESETS.values() if not p.random_weights]
    for name in names:
        target = download_preset(get_preset(name), Path(args.models_dir) if args.models_dir else None)
        print(f"{name}: {target}")


def _tool_presets(tool: str) -> list[str]:
    return [p.name for p in presets_for(tool)]


def _print_progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr)


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
    references = _image_files(args.refs) if args.refs else None
    pipeline = get_pipeline(preset.name, device=args.device)
    out = Path(args.out)
    if args.video:
        summary, _ = inspect_video(pipeline, preset, (Path(args.video).name, Path(args.video)), args.object, out,
                                   references, threshold=args.threshold, stride=args.stride, fps=args.fps,
                                   batch_size=args.batch_size, progress=_print_progress)
        rows = [(r["score"], r["verdict"], r["file"]) for r in summary["frames"]]
    else:
        summary, _ = inspect_images(pipeline, preset, _image_files(args.images), args.object, out, references,
                                    threshold=args.threshold, batch_size=args.batch_size, progress=_print_progress)
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
                             progress=_print_progress)
    write_report(report, Path(args.out))
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{'':14} {'image AUROC':>11} {'pixel AUROC':>11} {'PRO@30%':>8} {'F1-max':>7}")
    rows = [("all", report["metrics"]), *report["metrics"]["per_defect_type"].items()]
    for name, m in rows:
        cells = [m.get(key) for key in ("image_auroc", "pixel_auroc", "pro", "image_f1_max")]
        print(f"{name:14} " + " ".join(f"{v:>11.3f}" if v is not None else f"{'-':>11}" for v in cells))


def _data_files(paths: list[str]) -> list[tuple[str, Path]]:
    """Files named on the command line; a folder contributes every file below it, named relative to it."""
    files: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += [(str(p.relative_to(path)), p) for p in sorted(path.rglob("*")) if p.is_file()]
        elif path.is_file():
            files.append((path.name, path))
        else:
            raise UserInputError(f"{raw}: no such file or directory.")
    return files


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
            report, _ = run_evaluation(_data_files(args.data or []), Path(work), out, params, _print_progress)
        else:
            video = (Path(args.video).name, Path(args.video)) if args.video else None
            report, _ = run_completion(_data_files(args.data or []), Path(work), out, params, video, _print_progress)
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


def named(paths: list[str] | None) -> list[tuple[str, Path]]:
    """(name, path) pairs, as jobs pass their inputs."""
    return [(Path(p).name, Path(p)) for p in paths or []]


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
                                   args.box, variants=args.variants, preset=preset, progress=_print_progress)
    else:
        summary, files = run_video(pipeline, named([args.video])[0], settings, Path(args.out), args.region,
                                   args.anchor_frame, named(args.mask), args.box, args.keyframes,
                                   named(args.frame_masks), not args.no_extended_attention, args.chunk_size,
                                   preset=preset, progress=_print_progress)
    for note in summary["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(json.dumps({"outputs": [str(Path(args.out) / name) for name in files]}))


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
        report, _ = detect_files(model, _image_files(args.images), Path(args.out), args.threshold, args.device,
                                 progress=_print_progress)
        for row in report["predictions"]:
            for box in row["boxes"]:
                print(f"{box['score']:.4f}  {box['category']}  {row['file']}  {box['box']}")
        return
    from engine.finetune.runs import predict_files, predict_video

    report = (predict_video(model, named([args.video])[0], args.alpha, stride=args.stride, device=args.device)
              if args.video else predict_files(model, _image_files(args.images), args.alpha, args.device))
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
        dataset = load_detection_set(_data_files(args.data), Path(work), args.format)
        summary, _ = train_and_save(dataset, preset, settings, out, args.name or "detector", args.device,
                                    _print_progress)
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
        report = kshot_evaluation(data, preset, settings, args.shots, seeds, args.device, _print_progress)
        out.mkdir(parents=True, exist_ok=True)
        (out / "kshot.json").write_text(json.dumps(report, indent=1))
        for key in ("zero_shot_accuracy", "fine_tuned_accuracy"):
            print(f"{key}: {report[key]['mean']:.3f} +- {report[key]['std']:.3f} ({args.shots}-shot, seeds {seeds})")
        return
    summary, _ = train_and_save(data, preset, settings, out, args.name or "classifier", named(args.unlabeled),
                                args.device, _print_progress)
    for label in ("zero_shot", "fine_tuned"):
        metrics = summary["metrics"][label]
        if metrics:
            print(f"{label:10} accuracy {metrics['accuracy']:.3f} on {metrics['images']} held-out images")
    _print_run(summary, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    weights = commands.add_parser("weights", help="download the real weights of presets (needs internet)")
    weights.add_argument("--preset", action="append", choices=sorted(PRESETS), help="default: all real presets")
    weights.add_argument("--models-dir", help="default: FEWSHOT_MODELS_DIR")
    weights.set_defaults(run=cmd_weights)
    anomaly = commands.add_parser("anomaly", help="WinCLIP / WinCLIP+ inspection of images or a video")
    anomaly.add_argument("--images", nargs="+", help="image files, folders or zips of images")
    anomaly.add_argument("--video", help="one video file (mp4, webm, mov, avi, mkv)")
    anomaly.add_argument("--object", required=True, help="object name, e.g. 'metal plate'")
    anomaly.add_argument("--refs", nargs="+", help="images or folders of good parts: switches on WinCLIP+")
    anomaly.add_argument("--threshold", type=_threshold_arg, default="auto",
                         help="auto (calibrated from 2+ good parts, else 0.5), calibrate, or a value in [0, 1]")
    anomaly.add_argument("--stride", type=int, help="video: score every Nth frame")
    anomaly.add_argument("--fps", type=float, help="video: score about this many frames per second")
    anomaly.add_argument("--preset", default="winclip-vit-b-16-plus-240", choices=_tool_presets("anomaly"))
    anomaly.add_argument("--out", required=True, help="folder for maps, overlays, scores.json and scores.csv")
    anomaly.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    anomaly.add_argument("--batch-size", type=int, help="images per forward pass (default: 8 on GPU, 1 on CPU)")
    anomaly.set_defaults(run=cmd_anomaly)
    evaluation = commands.add_parser("evaluate", help="metrics on a labelled folder in the MVTec AD layout")
    evaluation.add_argument("--data", required=True, help="folder with test/, ground_truth/ and train/good/")
    evaluation.add_argument("--object", required=True)
    evaluation.add_argument("--shots", type=int, default=0, help="good references from train/good (WinCLIP+)")
    evaluation.add_argument("--preset", default="winclip-vit-b-16-plus-240", choices=_tool_presets("anomaly"))
    evaluation.add_argument("--out", required=True, help="folder for metrics.json, scores.csv, roc.png")
    evaluation.add_argument("--device")
    evaluation.set_defaults(run=cmd_evaluate)
    complete = commands.add_parser("complete", help="annotation completion: propose missing boxes, or evaluate it")
    complete.add_argument("mode", choices=["run", "evaluate"], help="run: complete a set; evaluate: hide boxes of "
                          "a fully annotated set, complete, report recall and precision at IoU 0.5")
    complete.add_argument("--data", nargs="+", help="folders or files: images (or zips) and annotations in COCO "
                          "JSON, YOLO txt + classes.txt, or Pascal VOC XML")
    complete.add_argument("--format", default="auto", choices=["auto", "coco", "yolo", "voc"])
    complete.add_argument("--video", help="run: a video whose sampled frames become the images")
    complete.add_argument("--stride", type=int, default=30, help="run: keep every N-th video frame (default 30)")
    complete.add_argument("--preset", default="completion-owlv2-base", choices=_tool_presets("completion"))
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
    insert.add_argument("--preset", default="insertion-sd15-controlnet-inpaint", choices=_tool_presets("insertion"))
    insert.add_argument("--out", required=True, help="folder for the results and summary.json")
    insert.add_argument("--device")
    insert.set_defaults(run=cmd_insert)
    finetune = commands.add_parser("finetune", help="few-shot fine-tuning: a CLIP classifier or an RT-DETR detector, "
                                   "or use the result")
    finetune.add_argument("mode", choices=["classify", "detect", "predict"])
    finetune.add_argument("--data", nargs="+", help="classify: folders with a sub-folder per class, or zips of that; "
                          "detect: images and annotations (COCO JSON, YOLO txt + classes.txt, VOC XML), folders, "
                          "files or zips")
    finetune.add_argument("--out", help="classify, detect: folder for model/, model.zip, metrics.json, history.csv; "
                          "predict with a detector: folder for detections.json and the drawn boxes")
    finetune.add_argument("--name", help="classify, detect: the model's name (default: classifier, detector)")
    finetune.add_argument("--preset", choices=_tool_presets("finetune") + _tool_presets("finetune-detect"),
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
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (UserInputError, WeightsNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
