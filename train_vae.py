"""Train the mel VAE AudioLDM diffuses in (offline: `pipeline.tiny_vae()` on the mixed-up clips).

    accelerate launch train_vae.py --config configs/audioldm/vae_offline.yaml
    python train_vae.py --config configs/audioldm/vae_offline.yaml --set train.steps=1000 --resume latest

The final directory (`train.output_dir/final`) is an AutoencoderKL with `scaling_factor` set to
1 / std of its latents on training clips; `vae_summary.json` next to it holds the validation
reconstruction error (mean absolute log-mel error) and the training time.
"""
from __future__ import annotations

import argparse
import sys

from tclap.config import read_run_config
from audioldm_cond.vae_training import VaeRunConfig, run
from tclap.launch import finish, run_or_exit, training_parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return training_parser(__doc__, "model, data, train", "model.kl_weight=1e-4").parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    final = run_or_exit("train_vae", lambda: run(read_run_config(VaeRunConfig, args.config, args.overrides,
                                                                 args.output_dir),
                                                 resume=args.resume, provenance={"command": " ".join(sys.argv)}))
    print(f"final VAE: {final}")


if __name__ == "__main__":
    main()
    finish()
