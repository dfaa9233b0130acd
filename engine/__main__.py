"""Command line on the same engine calls as the app.

    python -m engine weights [--preset NAME ...] [--models-dir DIR] [--dry-run]
    python -m engine anomaly --images DIRS_FILES_ZIPS... --object "metal plate" [--refs DIR] [--threshold T] --out DIR
    python -m engine anomaly --video FILE [--stride N | --fps F] --object "metal plate" [--refs DIR] --out DIR
    python -m engine evaluate --data MVTEC_CATEGORY_DIR --object "magnetic tile" [--shots K] --out DIR
    python -m engine complete run --data DIR_OR_FILES... [--video F --stride N] [--preset P | --detector DIR] --out DIR
    python -m engine complete evaluate --data DIR [--drop 0.3] [--seed 0] [--threshold 0.3] --out DIR
    python -m engine insert (--image F | --video F) (--box X0,Y0,X1,Y1 | --mask F) --prompt "a red car" --out DIR
    python -m engine finetune classify --data DIRS_ZIPS... --out DIR [--method lora|selective-lora|linear] [--kshot K]
    python -m engine finetune detect --data DIRS_OR_FILES_OR_ZIPS... --out DIR [--preset detection-tiny] [--kshot K]
    python -m engine finetune predict --model DIR (--images FILES... [--out DIR] | --video F [--stride N]) [--alpha A]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import anomaly, completion, finetune, insertion
from engine.cli.common import check_out
from engine.errors import UserInputError, WeightsNotFoundError
from engine.presets import PRESETS, get_preset


def cmd_weights(args: argparse.Namespace) -> None:
    """List (--dry-run) or download exactly the files the loader reads, one copy each, total size first."""
    from engine.weights import download, hub_offline, human_size, is_installed, manifest, models_dir, plan_download

    presets = [get_preset(n) for n in args.preset] if args.preset else [p for p in PRESETS.values()
                                                                         if not p.random_weights]
    target = Path(args.models_dir).expanduser() if args.models_dir else models_dir()
    if hub_offline():
        print("HF_HUB_OFFLINE is set: the hub cannot be asked which files it has and their sizes. "
              "The loader reads (size unknown offline):")
        for preset in presets:
            print(f"{preset.name} ({'installed' if is_installed(preset) else 'not installed'}):")
            for f in manifest(preset):
                print(f"  {f.repo}: {f.describe()}{' (if the repository has it)' if f.optional else ''}")
        if not args.dry_run:
            raise UserInputError("Cannot download with HF_HUB_OFFLINE set: unset it on a machine with internet.")
        return
    try:
        plans = {preset.name: plan_download(preset) for preset in presets}
    except Exception as exc:  # no network, hub down, repository moved
        raise UserInputError(f"Cannot list the files on the Hugging Face hub ({type(exc).__name__}: {exc}); "
                             "is this machine online?") from exc
    total = sum(f.size for files in plans.values() for f in files)
    count = sum(len(files) for files in plans.values())
    print(f"{count} file{'s' if count != 1 else ''}, {human_size(total)} in all, into {target}:")
    for name, files in plans.items():
        print(f"{name}: {human_size(sum(f.size for f in files))}")
        for f in files:
            print(f"  {f.local:<45} {human_size(f.size):>10}  ({f.repo})")
    if args.dry_run:
        return
    for name, files in plans.items():
        download(files, target / name)
        print(f"{name}: {len(files)} files checked against the hub's sizes and checksums")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    weights = commands.add_parser("weights", help="download the real weights of presets (needs internet); "
                                  "an interrupted download resumes when run again")
    weights.add_argument("--preset", action="append", choices=sorted(PRESETS), help="default: all real presets")
    weights.add_argument("--models-dir", help="default: FEWSHOT_MODELS_DIR")
    weights.add_argument("--dry-run", action="store_true", help="list the files and their sizes, download nothing")
    weights.set_defaults(run=cmd_weights)
    for tool in (anomaly, completion, insertion, finetune):
        tool.add_commands(commands)
    args = parser.parse_args(argv)
    try:
        if getattr(args, "out", None):
            check_out(args.out)
        args.run(args)
    except (UserInputError, WeightsNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
