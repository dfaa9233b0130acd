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

from engine.cli import anomaly, completion, finetune, insertion
from engine.errors import UserInputError, WeightsNotFoundError
from engine.presets import PRESETS, get_preset


def cmd_weights(args: argparse.Namespace) -> None:
    from engine.loading import download_preset

    names = args.preset or [p.name for p in PRESETS.values() if not p.random_weights]
    for name in names:
        target = download_preset(get_preset(name), Path(args.models_dir) if args.models_dir else None)
        print(f"{name}: {target}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    weights = commands.add_parser("weights", help="download the real weights of presets (needs internet)")
    weights.add_argument("--preset", action="append", choices=sorted(PRESETS), help="default: all real presets")
    weights.add_argument("--models-dir", help="default: FEWSHOT_MODELS_DIR")
    weights.set_defaults(run=cmd_weights)
    for tool in (anomaly, completion, insertion, finetune):
        tool.add_commands(commands)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (UserInputError, WeightsNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
