"""Train AudioLDM's UNet conditioned on a CLAP: the base CLAP, T-CLAP, or any CLAP directory.

    accelerate launch train_audioldm.py --cond tclap --config configs/audioldm/offline.yaml
    accelerate launch train_audioldm.py --cond clap --config configs/audioldm/offline.yaml
    accelerate launch --multi_gpu --num_processes 8 train_audioldm.py --cond tclap \\
        --config configs/audioldm/paper.yaml --set model.tclap=runs/tclap-paper/final --resume latest

--cond: clap (model.clap), tclap (model.tclap), or a CLAP checkpoint directory; a pipeline directory
in any of them conditions through its text tower (text only: condition.mode text). The VAE and
the CLAP stay frozen; only the UNet trains. The result is a pipeline directory
(`train.output_dir/pipeline`, `{cond}` in the output dir replaced by the --cond name) that
`audioldm_cond.pipeline.load_pipeline` reloads; `samples/step-N/` holds the validation prompts.
"""
from __future__ import annotations

import argparse
import sys

from audioldm_cond.ldm_training import LdmRunConfig, run
from tclap.config import read_run_config
from tclap.launch import finish, run_or_exit, training_parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = training_parser(__doc__, "model, data, condition, samples, train", "condition.mode=text")
    parser.add_argument("--cond", help="conditioning encoder: clap, tclap, a CLAP directory or a pipeline "
                                       "directory's text tower (default: model.cond of the config)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    overrides = args.overrides + ([f"model.cond={args.cond}"] if args.cond else [])
    pipeline = run_or_exit("train_audioldm", lambda: run(read_run_config(LdmRunConfig, args.config, overrides,
                                                                         args.output_dir),
                                                         resume=args.resume,
                                                         provenance={"command": " ".join(sys.argv)}))
    print(f"pipeline: {pipeline}")


if __name__ == "__main__":
    main()
    finish()
