"""Fine-tune a CLAP into T-CLAP, or pretrain the offline baseline CLAP.

    accelerate launch train_tclap.py --config configs/tclap/offline.yaml
    accelerate launch --multi_gpu --num_processes 8 train_tclap.py --config configs/tclap/paper.yaml \\
        --set data.positive_only=[/data/auto_acd.jsonl] --resume latest
"""
from __future__ import annotations

import argparse
import sys

from tclap.config import apply_overrides, load_yaml
from tclap.launch import run_or_exit, training_parser
from tclap.train import RunConfig, run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return training_parser(__doc__, "model, data, loss, train, freeze", "loss.temporal_weight=0").parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    def job():
        data = apply_overrides(load_yaml(args.config), args.overrides)
        if args.output_dir:
            apply_overrides(data, [f"train.output_dir={args.output_dir}"])
        return run(RunConfig.from_dict(data, args.config), resume=args.resume,
                   provenance={"command": " ".join(sys.argv)})

    final = run_or_exit("train_tclap", job)
    print(f"final model: {final}")


if __name__ == "__main__":
    main()
