"""Fine-tune a CLAP into T-CLAP, or pretrain the offline baseline CLAP.

    accelerate launch train_tclap.py --config configs/tclap/offline.yaml
    accelerate launch --multi_gpu --num_processes 8 train_tclap.py --config configs/tclap/paper.yaml \\
        --set data.positive_only=[/data/auto_acd.jsonl] --resume latest
"""
from __future__ import annotations

import argparse
import sys

from tclap.config import apply_overrides, load_yaml
from tclap.errors import DataError
from tclap.train import RunConfig, run
from tclap.trainer import TrainingDiverged


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="run config YAML (sections model, data, loss, train, freeze)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value; repeatable (e.g. --set loss.temporal_weight=0)")
    parser.add_argument("--output-dir", help="shorthand for --set train.output_dir=...")
    parser.add_argument("--resume", help="'latest' or a checkpoint folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        data = apply_overrides(load_yaml(args.config), args.overrides)
        if args.output_dir:
            apply_overrides(data, [f"train.output_dir={args.output_dir}"])
        final = run(RunConfig.from_dict(data, args.config), resume=args.resume,
                    provenance={"command": " ".join(sys.argv)})
    except (DataError, TrainingDiverged) as error:
        print(f"train_tclap: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"final model: {final}")


if __name__ == "__main__":
    main()
