"""Fine-tune a CLAP into T-CLAP, or pretrain the offline baseline CLAP.

    accelerate launch train_tclap.py --config configs/tclap/offline.yaml
    accelerate launch --multi_gpu --num_processes 8 train_tclap.py --config configs/tclap/paper.yaml \\
        --set data.positive_only=[/data/auto_acd.jsonl] --resume latest
"""
from __future__ import annotations

import argparse
import sys

from tclap.config import read_run_config
from tclap.launch import finish, run_or_exit, training_parser
from tclap.train import RunConfig, run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return training_parser(__doc__, "model, data, loss, train, freeze", "loss.temporal_weight=0").parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    final = run_or_exit("train_tclap", lambda: run(read_run_config(RunConfig, args.config, args.overrides,
                                                                   args.output_dir),
                                                   resume=args.resume, provenance={"command": " ".join(sys.argv)}))
    print(f"final model: {final}")


if __name__ == "__main__":
    main()
    finish()
