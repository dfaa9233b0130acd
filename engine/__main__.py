"""Command line on the same engine calls as the app.

    python -m engine weights [--preset NAME ...] [--models-dir DIR]
    python -m engine anomaly --images DIR_OR_FILES... --object "metal plate" [--refs DIR] [--preset NAME] --out DIR
    python -m engine evaluate --data MVTEC_CATEGORY_DIR --object "magnetic tile" [--shots K] --out DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import UserInputError, WeightsNotFoundError
from engine.media import ACCEPTED_IMAGE_SUFFIXES, list_images
from engine.presets import PRESETS, get_preset


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


def cmd_anomaly(args: argparse.Namespace) -> None:
    from engine.anomaly import get_pipeline
    from engine.anomaly.outputs import run_summary, write_outputs
    from engine.media import load_images

    preset = get_preset(args.preset)
    names, images, skipped = load_images(_image_files(args.images))
    references = None
    if args.refs:
        _, references, skipped_refs = load_images(_image_files(args.refs), what="reference images of good parts")
        skipped += [{**item, "role": "reference"} for item in skipped_refs]
    pipeline = get_pipeline(preset.name, device=args.device)
    results = pipeline(images, args.object, references=references, batch_size=args.batch_size,
                       progress=lambda f, m: print(f"[{f:4.0%}] {m}", file=sys.stderr))
    summary, _ = write_outputs(Path(args.out), names, images, results,
                               run_summary(args.object, preset, references, skipped))
    for record in summary["images"]:
        print(f"{record['score']:.4f}  {record['file']}")
    for item in skipped:
        print(f"skipped  {item['error']}", file=sys.stderr)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from engine.anomaly import get_pipeline
    from engine.anomaly.evaluation import evaluate_folder, write_report

    pipeline = get_pipeline(get_preset(args.preset).name, device=args.device)
    report = evaluate_folder(pipeline, args.data, args.object, shots=args.shots,
                             progress=lambda f, m: print(f"[{f:4.0%}] {m}", file=sys.stderr))
    write_report(report, Path(args.out))
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{'':14} {'image AUROC':>11} {'pixel AUROC':>11} {'PRO@30%':>8} {'F1-max':>7}")
    rows = [("all", report["metrics"]), *report["metrics"]["per_defect_type"].items()]
    for name, m in rows:
        cells = [m.get(key) for key in ("image_auroc", "pixel_auroc", "pro", "image_f1_max")]
        print(f"{name:14} " + " ".join(f"{v:>11.3f}" if v is not None else f"{'-':>11}" for v in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    weights = commands.add_parser("weights", help="download the real weights of presets (needs internet)")
    weights.add_argument("--preset", action="append", choices=sorted(PRESETS), help="default: all real presets")
    weights.add_argument("--models-dir", help="default: FEWSHOT_MODELS_DIR")
    weights.set_defaults(run=cmd_weights)
    anomaly = commands.add_parser("anomaly", help="zero-shot WinCLIP on images")
    anomaly.add_argument("--images", nargs="+", required=True, help="image files or folders")
    anomaly.add_argument("--object", required=True, help="object name, e.g. 'metal plate'")
    anomaly.add_argument("--refs", nargs="+", help="images or folders of good parts: switches on WinCLIP+")
    anomaly.add_argument("--preset", default="winclip-vit-b-16-plus-240", choices=sorted(PRESETS))
    anomaly.add_argument("--out", required=True, help="folder for maps, overlays and scores.json")
    anomaly.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    anomaly.add_argument("--batch-size", type=int, help="images per forward pass (default: 8 on GPU, 1 on CPU)")
    anomaly.set_defaults(run=cmd_anomaly)
    evaluation = commands.add_parser("evaluate", help="metrics on a labelled folder in the MVTec AD layout")
    evaluation.add_argument("--data", required=True, help="folder with test/, ground_truth/ and train/good/")
    evaluation.add_argument("--object", required=True)
    evaluation.add_argument("--shots", type=int, default=0, help="good references from train/good (WinCLIP+)")
    evaluation.add_argument("--preset", default="winclip-vit-b-16-plus-240", choices=sorted(PRESETS))
    evaluation.add_argument("--out", required=True, help="folder for metrics.json, scores.csv, roc.png")
    evaluation.add_argument("--device")
    evaluation.set_defaults(run=cmd_evaluate)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (UserInputError, WeightsNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
